package rollback

import (
	"errors"
	"fmt"
	"slices"
)

// MaxTagAndService is Cloud Run's limit on a traffic tag and the service name
// together ("Combined traffic tag and service name cannot exceed 46
// characters"): the tag URL's first DNS label is <tag>---<service>.
const MaxTagAndService = 46

// ErrNoTagRoom says a service's name leaves no room for the tag a command needs.
var ErrNoTagRoom = errors.New("no room for a traffic tag")

// ValidateTagFor checks tag as a traffic tag of service: a valid tag that,
// with the service name, fits Cloud Run's 46 characters.
func ValidateTagFor(service, tag string) error {
	if err := ValidateTag(tag); err != nil {
		return err
	}
	if n := len(tag) + len(service); n > MaxTagAndService {
		return fmt.Errorf("%w: tag %q and service name %q are %d characters together; Cloud Run allows %d (use a tag of at most %d characters)",
			ErrNoTagRoom, tag, service, n, MaxTagAndService, max(MaxTagAndService-len(service), 0))
	}
	return nil
}

// DrillNames returns the drill's tag and revision name on service for the run
// id, and the id they carry: tag drill-<id> when it fits, else d<id> with the
// id shortened to the room left (a service name of 40 characters leaves 6: a
// tag d + 5 characters of id). The revision is <service>-drill-<id> (at most
// 49+7+6 characters, within Cloud Run's 63). A name of 45 characters or more
// leaves no room for a tag that carries an id: ErrNoTagRoom.
func DrillNames(service, id string) (tag, revision, runID string, err error) {
	room := MaxTagAndService - len(service)
	if room >= len("drill-")+len(id) {
		return "drill-" + id, service + "-drill-" + id, id, nil
	}
	n := min(len(id), room-1)
	if n < 1 {
		return "", "", "", fmt.Errorf("%w: service name %q is %d characters, and Cloud Run allows a traffic tag only while tag and name together are at most %d: the drill's tag (d + its run id) needs 2 or more; drill a service with a name of 44 characters or less, or use what works without a tag: guard --restore-from, rollback, snapshot, status",
			ErrNoTagRoom, service, len(service), MaxTagAndService)
	}
	id = id[:n]
	return "d" + id, service + "-drill-" + id, id, nil
}

// lastGoodTags are the guard's default last-good tags, longest first: the
// first that fits with the service name is used.
var lastGoodTags = []string{"last-good", "good", "lg"}

// LastGoodTag is the tag that marks a service's last good revision. With a
// tag given (explicit), it must fit; by default it is "last-good", or a
// shorter one ("good", "lg") when the service name leaves less room. It
// returns "" and ErrNoTagRoom when no tag fits (a name of 45 characters or
// more): the guard then needs --restore-from, and does not tag.
func LastGoodTag(service, tag string, explicit bool) (string, error) {
	if explicit {
		return tag, ValidateTagFor(service, tag)
	}
	if i := slices.IndexFunc(lastGoodTags, func(t string) bool { return ValidateTagFor(service, t) == nil }); i >= 0 {
		return lastGoodTags[i], nil
	}
	return "", fmt.Errorf("%w: service name %q is %d characters, which leaves no room for a last-good tag (tag and name together at most %d)", ErrNoTagRoom, service, len(service), MaxTagAndService)
}
