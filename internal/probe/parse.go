package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// healthyStatuses are the JSON statuses that mean healthy, compared without
// regard to case: this project's "healthy", the common "ok", the IETF health
// check draft's "pass" and Spring Boot Actuator's "UP".
var healthyStatuses = []string{"healthy", "ok", "pass", "up"}

// body is what a health answer says about itself.
type body struct {
	isJSON    bool
	jsonErr   error
	hasStatus bool
	statusStr bool // status is a JSON string
	status    string
	version   string
	revision  string
	message   string // "output", "message" or "error": why it is not healthy
}

// classify decides the outcome of an answer whose body has been read.
func classify(a Attempt, resp *http.Response, raw []byte, over bool, maxBody int64, ptr []string, exp Expect) Attempt {
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	mt = strings.ToLower(mt)
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	var b body
	if !over && (isJSONMediaType(mt) || startsWithBrace(raw)) {
		b = parseBody(raw, mt == "application/health+json", ptr)
	}
	a.Status, a.Version = b.status, b.version
	a.Revision = strings.TrimSpace(resp.Header.Get("X-Served-By"))
	if a.Revision == "" {
		a.Revision = b.revision
	}
	code := resp.StatusCode
	httpStatus := strings.TrimSpace(fmt.Sprintf("HTTP %d %s", code, http.StatusText(code)))

	switch {
	case code >= 300 && code < 400:
		a.Outcome = Unhealthy
		if loc, err := resp.Location(); err == nil && loc.Host != "" {
			a.Detail = fmt.Sprintf("redirect to %s not followed (%s)", loc.Host, httpStatus)
		} else {
			a.Detail = fmt.Sprintf("redirect not followed (%s, no usable Location)", httpStatus)
		}
		return a
	case code < 200 || code > 299:
		a.Outcome = Unhealthy
		a.Detail = httpStatus + explain(b, raw, over)
		return a
	case over:
		a.Outcome = Unhealthy
		a.Detail = fmt.Sprintf("%s with a body over %d bytes (MaxBody): not parsed", httpStatus, maxBody)
		return a
	case b.isJSON && b.jsonErr != nil:
		a.Outcome = Unhealthy
		a.Detail = fmt.Sprintf("%s with a body that is not valid JSON: %v", httpStatus, b.jsonErr)
		return a
	case b.hasStatus && !b.statusStr:
		a.Outcome = Unhealthy
		a.Detail = fmt.Sprintf("%s with a JSON status that is not a string: %s", httpStatus, b.status)
		return a
	case b.hasStatus && isHealthyStatus(b.status):
		a.Outcome = Healthy
	case b.hasStatus && strings.EqualFold(strings.TrimSpace(b.status), "warn"):
		a.Outcome = Warn
	case b.hasStatus:
		a.Outcome = Unhealthy
		a.Detail = httpStatus + explain(b, raw, over)
		return a
	default:
		a.Outcome = Healthy
	}

	switch {
	// An answer that names no revision (real Cloud Run adds no header; many
	// apps do not report it) cannot be judged by revision: its version decides.
	case len(exp.Revisions) > 0 && a.Revision != "" && !slices.Contains(exp.Revisions, a.Revision):
		a.Outcome = WrongRevision
		a.Detail = fmt.Sprintf("served by %q, want one of %v: not converged", a.Revision, exp.Revisions)
	case exp.Version != "" && a.Version != exp.Version:
		a.Outcome = WrongVersion
		if a.Version == "" {
			a.Detail = fmt.Sprintf("no version in the answer, want %q", exp.Version)
		} else {
			a.Detail = fmt.Sprintf("version %q, want %q", a.Version, exp.Version)
		}
	default:
		a.Detail = httpStatus + summary(a)
		if a.Outcome == Warn && b.message != "" {
			a.Detail += ": " + b.message
		}
	}
	return a
}

// explain says why an answer is not healthy: its JSON status and message,
// else the start of its body.
func explain(b body, raw []byte, over bool) string {
	switch {
	case b.hasStatus && b.message != "":
		return fmt.Sprintf(": status %q: %s", b.status, b.message)
	case b.hasStatus:
		return fmt.Sprintf(": status %q", b.status)
	case b.message != "":
		return ": " + b.message
	}
	s := strings.TrimSpace(string(raw[:min(len(raw), snippetBytes)]))
	if s == "" {
		return ""
	}
	if over || len(raw) > snippetBytes {
		s += "…"
	}
	return ": " + s
}

// summary lists what a healthy answer reported.
func summary(a Attempt) string {
	var parts []string
	if a.Status != "" {
		parts = append(parts, fmt.Sprintf("status %q", a.Status))
	}
	if a.Version != "" {
		parts = append(parts, fmt.Sprintf("version %q", a.Version))
	}
	if a.Revision != "" {
		parts = append(parts, fmt.Sprintf("revision %q", a.Revision))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func isHealthyStatus(s string) bool {
	s = strings.TrimSpace(s)
	return slices.ContainsFunc(healthyStatuses, func(h string) bool { return strings.EqualFold(s, h) })
}

func isJSONMediaType(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func startsWithBrace(raw []byte) bool {
	t := bytes.TrimLeft(raw, " \t\r\n")
	return len(t) > 0 && t[0] == '{'
}

// parseBody reads status, version, revision and message from a JSON body.
func parseBody(raw []byte, healthJSON bool, ptr []string) body {
	b := body{isJSON: true}
	doc, err := decodeJSON(raw)
	if err != nil {
		b.jsonErr = err
		return b
	}
	obj, _ := doc.(map[string]any)
	if s, ok := obj["status"]; ok && s != nil {
		b.hasStatus = true
		b.status, b.statusStr = s.(string)
		if !b.statusStr {
			js, _ := json.Marshal(s)
			b.status = string(js)
		}
	}
	switch {
	case ptr != nil:
		b.version = scalar(resolve(doc, ptr))
	case healthJSON:
		b.version = scalar(obj["releaseId"])
		if b.version == "" {
			b.version = scalar(obj["version"])
		}
	default:
		b.version = scalar(obj["version"])
	}
	b.revision, _ = obj["revision"].(string)
	for _, k := range []string{"output", "message", "error"} {
		if m, ok := obj[k].(string); ok && m != "" {
			b.message = m
			break
		}
	}
	return b
}

func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// scalar renders a JSON string or number as text; anything else is "".
func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// ValidateVersionField checks that s is empty or an RFC 6901 JSON pointer
// such as "/build/version", so a flag can be rejected before probing.
func ValidateVersionField(s string) error {
	_, err := parsePointer(s)
	return err
}

// parsePointer splits an RFC 6901 JSON pointer into unescaped reference
// tokens. "" (no pointer) gives nil; "/" gives one empty token.
func parsePointer(p string) ([]string, error) {
	if p == "" {
		return nil, nil
	}
	if p[0] != '/' {
		return nil, fmt.Errorf("version field %q is not a JSON pointer: start it with \"/\", e.g. \"/version\" or \"/build/version\"", p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		for j := 0; j < len(t); j++ {
			if t[j] == '~' && (j+1 == len(t) || (t[j+1] != '0' && t[j+1] != '1')) {
				return nil, fmt.Errorf("version field %q has a bad escape: write \"~0\" for \"~\" and \"~1\" for \"/\"", p)
			}
		}
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// resolve follows pointer tokens through a decoded JSON document; nil when
// the pointer does not resolve.
func resolve(doc any, toks []string) any {
	for _, t := range toks {
		switch v := doc.(type) {
		case map[string]any:
			var ok bool
			if doc, ok = v[t]; !ok {
				return nil
			}
		case []any:
			if t == "" || (len(t) > 1 && t[0] == '0') || strings.Trim(t, "0123456789") != "" {
				return nil
			}
			i, err := strconv.Atoi(t)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}
