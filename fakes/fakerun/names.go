package fakerun

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// serviceRef is a parsed service resource name.
type serviceRef struct {
	project, region, id string
}

func (r serviceRef) fullName() string {
	return fmt.Sprintf("projects/%s/locations/%s/services/%s", r.project, r.region, r.id)
}

func (r serviceRef) location() string {
	return fmt.Sprintf("projects/%s/locations/%s", r.project, r.region)
}

// segment matches one path segment of a resource name.
const segment = `([^/]+)`

var (
	locationRE = regexp.MustCompile(`^projects/` + segment + `/locations/` + segment + `$`)
	serviceRE  = regexp.MustCompile(`^projects/` + segment + `/locations/` + segment + `/services/` + segment + `$`)
	revisionRE = regexp.MustCompile(`^projects/` + segment + `/locations/` + segment + `/services/` + segment + `/revisions/` + segment + `$`)
	opRE       = regexp.MustCompile(`^projects/` + segment + `/locations/` + segment + `/operations/` + segment + `$`)

	// serviceIDRE is Cloud Run's rule for service names: lowercase letters,
	// digits and hyphens, starting with a letter, not ending with a hyphen,
	// at most 49 characters.
	serviceIDRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$`)
	// revisionIDRE is a DNS-1035 label of at most 63 characters.
	revisionIDRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// tagRE is Cloud Run's rule for traffic tags (at most 46 characters).
	tagRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,44}[a-z0-9])?$`)
	// generatedRE picks the NNNNN out of <service>-NNNNN-xyz.
	generatedRE = regexp.MustCompile(`-([0-9]{5})-[a-z0-9]+$`)
)

func parseLocation(name string) (project, region string, ok bool) {
	m := locationRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

func parseService(name string) (serviceRef, bool) {
	m := serviceRE.FindStringSubmatch(name)
	if m == nil {
		return serviceRef{}, false
	}
	return serviceRef{project: m[1], region: m[2], id: m[3]}, true
}

func parseRevision(name string) (serviceRef, string, bool) {
	m := revisionRE.FindStringSubmatch(name)
	if m == nil {
		return serviceRef{}, "", false
	}
	return serviceRef{project: m[1], region: m[2], id: m[3]}, m[4], true
}

// revisionFullName is the resource name of revision rev of the service.
func revisionFullName(serviceFullName, rev string) string {
	return serviceFullName + "/revisions/" + rev
}

// shortName is the last path segment of a resource name.
func shortName(name string) string {
	return name[strings.LastIndexByte(name, '/')+1:]
}

// generatedNumber is the NNNNN of a revision named <service>-NNNNN-xyz, or 0.
func generatedNumber(serviceID, rev string) int {
	if !strings.HasPrefix(rev, serviceID+"-") {
		return 0
	}
	m := generatedRE.FindStringSubmatch(rev[len(serviceID):])
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// digest hashes its parts, separated so that ("ab","c") and ("a","bc") differ.
func digest(parts ...string) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// revisionSuffixAlphabet is what Cloud Run's three-character revision suffixes use.
const revisionSuffixAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// generatedRevisionName is <service>-NNNNN-xyz, where xyz is derived from the
// service's full name and n, so that runs are repeatable.
func generatedRevisionName(serviceFullName, serviceID string, n int) string {
	d := digest("revision", serviceFullName, strconv.Itoa(n))
	var suffix [3]byte
	for i := range suffix {
		suffix[i] = revisionSuffixAlphabet[int(d[i])%len(revisionSuffixAlphabet)]
	}
	return fmt.Sprintf("%s-%05d-%s", serviceID, n, suffix[:])
}

// uuidFrom formats a digest of its parts as a version-4-shaped UUID.
func uuidFrom(parts ...string) string {
	d := digest(parts...)
	d[6] = d[6]&0x0f | 0x40
	d[8] = d[8]&0x3f | 0x80
	h := hex.EncodeToString(d[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// etagFrom makes an opaque, quoted etag, as Cloud Run's look.
func etagFrom(parts ...string) string {
	d := digest(parts...)
	return `"` + base64.RawURLEncoding.EncodeToString(d[:15]) + `"`
}

// DefaultURL is the URLFunc used unless WithURLFunc or SetURLFunc says
// otherwise. It has the shape of Cloud Run's URLs:
// https://<service>-<10 hex chars derived from the project>-<region abbreviation>.a.run.app
// for the service, and https://<tag>---<service>-….a.run.app for a tag. A name
// that does not parse as a service yields "".
func DefaultURL(serviceFullName, tag string) string {
	ref, ok := parseService(serviceFullName)
	if !ok {
		return ""
	}
	d := digest("project", ref.project)
	host := ref.id + "-" + hex.EncodeToString(d[:5]) + "-" + regionAbbrev(ref.region) + ".a.run.app"
	if tag != "" {
		host = tag + "---" + host
	}
	return "https://" + host
}

// regionAbbrev abbreviates a region the way Cloud Run URLs mostly do: the first
// letter of each hyphen-separated word ("us-central1" → "uc").
func regionAbbrev(region string) string {
	var b strings.Builder
	for _, w := range strings.Split(region, "-") {
		if w != "" && w[0] >= 'a' && w[0] <= 'z' {
			b.WriteByte(w[0])
		}
	}
	if b.Len() == 0 {
		return "xx"
	}
	return b.String()
}
