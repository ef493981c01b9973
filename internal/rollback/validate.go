package rollback

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	serviceNameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	projectIDRE   = regexp.MustCompile(`^([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$`)
	regionRE      = regexp.MustCompile(`^[a-z]+(-[a-z]+)+[0-9]+$`)
	tagRE         = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
)

// ValidateServiceName checks a Cloud Run service name: lowercase letters, digits and
// hyphens, starting with a letter, not ending with a hyphen, at most 49 characters.
func ValidateServiceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("no service given: pass --service NAME")
	case len(name) > 49:
		return fmt.Errorf("service name %q is %d characters long; Cloud Run allows at most 49", name, len(name))
	case !serviceNameRE.MatchString(name):
		return fmt.Errorf("service name %q is not valid: use lowercase letters, digits and '-', start with a letter, and do not end with '-'", name)
	}
	return nil
}

// ValidateRevisionName checks a revision name (short form, e.g. "api-00002-def").
func ValidateRevisionName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("empty revision name")
	case len(name) > 63:
		return fmt.Errorf("revision name %q is %d characters long; Cloud Run allows at most 63", name, len(name))
	case !serviceNameRE.MatchString(name):
		return fmt.Errorf("revision name %q is not valid: use lowercase letters, digits and '-', start with a letter, and do not end with '-' (a short name like api-00002-def, not a full resource name)", name)
	}
	return nil
}

// ValidateProjectID checks a Google Cloud project ID: 6 to 30 lowercase letters,
// digits and hyphens, starting with a letter, optionally domain-scoped ("example.com:proj").
func ValidateProjectID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("no project given: pass --project ID or set GOOGLE_CLOUD_PROJECT")
	case !projectIDRE.MatchString(id):
		return fmt.Errorf("project ID %q is not valid: use 6 to 30 lowercase letters, digits and '-', starting with a letter (the project ID, not its name or number)", id)
	}
	return nil
}

// ValidateRegion checks a Cloud Run region such as "us-central1".
func ValidateRegion(region string) error {
	switch {
	case region == "":
		return fmt.Errorf("no region given: pass --region REGION (e.g. us-central1) or set CLOUDSDK_RUN_REGION")
	case !regionRE.MatchString(region):
		return fmt.Errorf("region %q is not valid: use a Cloud Run region such as us-central1 or europe-west4", region)
	}
	return nil
}

// ValidateTag checks a traffic tag: lowercase letters, digits and '-', starting with
// a letter, at most 46 characters.
func ValidateTag(tag string) error {
	if len(tag) > 46 || !tagRE.MatchString(tag) {
		return fmt.Errorf("tag %q is not valid: use at most 46 lowercase letters, digits and '-', starting with a letter", tag)
	}
	return nil
}

// ValidateSplit checks that a split could be written: percents 0–100 summing to 100,
// targets naming a revision or LATEST, at most one LATEST, unique valid tags.
func ValidateSplit(s Split) error {
	if len(s) == 0 {
		return fmt.Errorf("empty traffic split")
	}
	var sum int32
	tags := map[string]bool{}
	latest := 0
	for _, t := range s {
		if t.Percent < 0 || t.Percent > 100 {
			return fmt.Errorf("traffic percent %d for %s is outside 0–100", t.Percent, t)
		}
		sum += t.Percent
		switch {
		case t.Latest && t.Revision != "":
			return fmt.Errorf("target %s names both LATEST and a revision", t)
		case t.Latest:
			latest++
		case t.Revision == "":
			return fmt.Errorf("a traffic target names neither a revision nor LATEST")
		default:
			if err := ValidateRevisionName(t.Revision); err != nil {
				return err
			}
		}
		if t.Tag != "" {
			if err := ValidateTag(t.Tag); err != nil {
				return err
			}
			if tags[t.Tag] {
				return fmt.Errorf("tag %q is used twice", t.Tag)
			}
			tags[t.Tag] = true
		}
	}
	if latest > 1 {
		return fmt.Errorf("more than one LATEST target")
	}
	if sum != 100 {
		return fmt.Errorf("traffic percents sum to %d, not 100 (%s)", sum, s)
	}
	return nil
}

// ParseSplit parses "rev-a=90,rev-b=10@canary,LATEST=0" into a Split.
func ParseSplit(text string) (Split, error) {
	var out Split
	for part := range strings.SplitSeq(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, rest, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("traffic entry %q: want REVISION=PERCENT[@TAG]", part)
		}
		pct, tag, _ := strings.Cut(rest, "@")
		var p int32
		if _, err := fmt.Sscanf(pct, "%d", &p); err != nil || fmt.Sprint(p) != pct {
			return nil, fmt.Errorf("traffic entry %q: percent %q is not a whole number", part, pct)
		}
		t := Target{Percent: p, Tag: tag}
		if name == "LATEST" {
			t.Latest = true
		} else {
			t.Revision = name
		}
		out = append(out, t)
	}
	if err := ValidateSplit(out); err != nil {
		return nil, err
	}
	return out, nil
}
