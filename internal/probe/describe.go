package probe

import (
	"fmt"
	"strings"
)

// Describe is one line on an attempt: outcome, status code, version and
// answering revision (each only when known), then the detail, e.g.
// "unhealthy, HTTP 503, version 1.1.0, from api-00002-def: HTTP 503 Service
// Unavailable". Every part is already escaped (Check escapes them).
func (a Attempt) Describe() string {
	parts := []string{a.Outcome.String()}
	if a.StatusCode != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", a.StatusCode))
	}
	if a.Version != "" {
		parts = append(parts, "version "+a.Version)
	}
	if a.Revision != "" {
		parts = append(parts, "from "+a.Revision)
	}
	s := strings.Join(parts, ", ")
	if a.Detail != "" {
		s += ": " + a.Detail
	}
	return s
}

// HealthURL is the URL a probe of baseURL requests: the health path appended
// to the base URL's own path (without the cache-busting query).
func (c *Checker) HealthURL(baseURL string) (string, error) {
	u, err := c.healthURL(baseURL)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// Describe is one line on a wait: the last answer (Attempt.Describe), then
// the summary of the wait under rule r (Verdict.Summary).
func (v Verdict) Describe(r Rule) string {
	return v.Last.Describe() + "; " + v.Summary(r)
}
