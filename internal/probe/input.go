package probe

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a flag value such as --timeout or --retry-delay: a Go
// duration ("1.5s", "200ms", "1m30s") or plain non-negative seconds ("5",
// "0.5"). Negative, empty and malformed values are errors whose message says
// what to write instead.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New(`empty duration: give a Go duration such as "5s" or "200ms", or plain seconds such as "5"`)
	}
	var d time.Duration
	if isPlainNumber(t) {
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %v", s, err)
		}
		ns := math.Round(f * float64(time.Second))
		if ns >= math.MaxInt64 || ns <= math.MinInt64 {
			return 0, fmt.Errorf("duration %q is too large: give at most %d seconds", s, int64(math.MaxInt64/int64(time.Second)))
		}
		d = time.Duration(ns)
	} else {
		var err error
		d, err = time.ParseDuration(t)
		if err != nil {
			return 0, fmt.Errorf(`invalid duration %q: give a Go duration such as "1.5s" or "200ms", or plain seconds such as "5"`, s)
		}
	}
	if d < 0 {
		return 0, fmt.Errorf(`negative duration %q: durations must be 0 or more, e.g. "5s" or "0.5"`, s)
	}
	return d, nil
}

// isPlainNumber reports whether s is an optionally signed decimal number
// without exponent: "5", "0.5", ".5", "-3".
func isPlainNumber(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dots := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// ValidateURL checks a base URL given by a user (--url) or reported by Cloud
// Run: absolute http or https with a host, no user name or password, a port
// (when present) from 1 to 65535, and plain http only for loopback hosts
// (localhost, 127.0.0.0/8, ::1). Messages say what is wrong and what to do;
// they never repeat a password.
func ValidateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("empty URL: give an absolute URL such as https://api-abc123-uc.a.run.app")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the raw URL, which may hold a password
		}
		return fmt.Errorf("invalid URL: %v; give an absolute URL such as https://api-abc123-uc.a.run.app", err)
	}
	if u.User != nil {
		return fmt.Errorf("URL %s contains a user name or password: remove it (probes authenticate with ID tokens, not URL credentials)", u.Redacted())
	}
	// Quote the URL in messages, unless it might hold credentials in a form
	// url.Parse did not recognise as user info ("user:pass@host").
	shown := strconv.Quote(raw)
	if strings.Contains(raw, "@") {
		shown = "(with user info redacted)"
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "http":
	case "":
		return fmt.Errorf("URL %s is not absolute: write it with a scheme, e.g. https://HOST", shown)
	default:
		return fmt.Errorf("URL %s has scheme %q: use https (or http for localhost)", shown, u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("URL %s has no host: write it as %s://HOST[:PORT][/PATH]", shown, strings.ToLower(u.Scheme))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("URL %s has port %s: use a port from 1 to 65535, or none", shown, p)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("URL %s has an empty port: remove the trailing \":\" or give a port from 1 to 65535", shown)
	}
	if strings.EqualFold(u.Scheme, "http") && !isLoopback(u.Hostname()) {
		return fmt.Errorf("URL %s uses plain http to %s: use https (http is allowed only for localhost, 127.0.0.0/8 and ::1)", shown, u.Hostname())
	}
	return nil
}

// isLoopback reports whether host is "localhost" or a loopback IP address.
func isLoopback(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// EndsWithHealthPath reports whether base already ends with healthPath (its
// query aside): a full health URL given as the base, which a probe would
// request as base+healthPath (…/api/v1/health/api/v1/health/). root is the
// base URL without it, the URL to give instead.
func EndsWithHealthPath(base, healthPath string) (root string, ok bool) {
	u, err := url.Parse(base)
	if err != nil {
		return "", false
	}
	hp, _, _ := strings.Cut(healthPath, "?")
	hp = strings.TrimSuffix(hp, "/")
	p := strings.TrimSuffix(u.Path, "/")
	if hp == "" || !strings.HasSuffix(p, hp) {
		return "", false
	}
	r := *u
	r.Path, r.RawPath = strings.TrimSuffix(p, hp), ""
	return r.String(), true
}
