package probe_test

import (
	"strings"
	"testing"
	"time"

	"github.com/runrollback/runrollback/internal/probe"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"5", 5 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{".25", 250 * time.Millisecond},
		{"5.", 5 * time.Second},
		{"+2", 2 * time.Second},
		{"0", 0},
		{" 5 ", 5 * time.Second},
		{"1.5s", 1500 * time.Millisecond},
		{"200ms", 200 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"0s", 0},
		{"-0", 0},
		{"0.0000000004", 0},
		{"0.0000000015", 2 * time.Nanosecond},
	}
	for _, tt := range tests {
		got, err := probe.ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v, want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestParseDurationErrors(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"", "empty duration"},
		{"  ", "empty duration"},
		{"-1", `negative duration "-1"`},
		{"-1.5s", `negative duration "-1.5s"`},
		{"abc", `invalid duration "abc": give a Go duration such as "1.5s"`},
		{"5 s", "invalid duration"},
		{"1e3", "invalid duration"},
		{"inf", "invalid duration"},
		{"NaN", "invalid duration"},
		{"0x10", "invalid duration"},
		{"1..2", "invalid duration"},
		{"9999999999999", "too large"},
		{"999999999h", "invalid duration"},
	}
	for _, tt := range tests {
		got, err := probe.ParseDuration(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseDuration(%q) = %v, %v, want error containing %q", tt.in, got, err, tt.wantErr)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5", "0.5", "1.5s", "200ms", "-1", "1h2m3.5s", "", ".", "+.5", "9223372036.854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := probe.ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Errorf("ParseDuration(%q) = %v, %v; want 0 with an error", s, d, err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, want a non-negative duration", s, d)
		}
		// Whatever was accepted round-trips through Duration.String.
		if back, err := probe.ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("ParseDuration(%q) = %v, but ParseDuration(%q) = %v, %v", s, d, d.String(), back, err)
		}
	})
}

func TestValidateURL(t *testing.T) {
	for _, raw := range []string{
		"https://api-abc123-uc.a.run.app",
		"https://api-abc123-uc.a.run.app/",
		"https://x.example/app?region=eu",
		"https://example.com:443",
		"https://example.com:65535/",
		"HTTPS://EXAMPLE.COM",
		"http://localhost",
		"http://LOCALHOST:8080/app",
		"http://127.0.0.1:1",
		"http://127.10.20.30/",
		"http://[::1]:8080",
		"http://[::ffff:127.0.0.1]:8080",
	} {
		if err := probe.ValidateURL(raw); err != nil {
			t.Errorf("ValidateURL(%q) = %v, want nil", raw, err)
		}
	}
}

func TestValidateURLErrors(t *testing.T) {
	tests := []struct {
		raw, wantErr string
	}{
		{"", "empty URL"},
		{"api.example.com", `URL "api.example.com" is not absolute: write it with a scheme`},
		{"/api/v1", "is not absolute"},
		{"ftp://example.com", `has scheme "ftp": use https`},
		{"http://example.com", "uses plain http to example.com: use https"},
		{"http://10.0.0.1:8080", "use https"},
		{"http://[::2]", "use https"},
		{"http://localhost.example.com", "use https"},
		{"http://localhost:99999", "has port 99999: use a port from 1 to 65535"},
		{"https://example.com:0", "has port 0"},
		{"https://example.com:", "empty port"},
		{"https://example.com:http", "invalid URL"},
		{"https://", "has no host"},
		{"https:///path", "has no host"},
		{"https:opaque", "has no host"},
		{"https://user:s3cret@example.com", "contains a user name or password: remove it"},
		{"https://user@example.com", "contains a user name or password"},
		{"user:s3cret@example.com", "redacted"},
		{"https://exa mple.com", "invalid URL"},
	}
	for _, tt := range tests {
		err := probe.ValidateURL(tt.raw)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ValidateURL(%q) = %v, want error containing %q", tt.raw, err, tt.wantErr)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ValidateURL(%q) = %v, repeats the password", tt.raw, err)
		}
	}
}

func TestValidateVersionField(t *testing.T) {
	for _, ok := range []string{"", "/version", "/build/version", "/a~0b/c~1d", "/", "/items/0"} {
		if err := probe.ValidateVersionField(ok); err != nil {
			t.Errorf("ValidateVersionField(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"version", "build.version", "/a~2", "/a~"} {
		if err := probe.ValidateVersionField(bad); err == nil {
			t.Errorf("ValidateVersionField(%q) = nil, want an error", bad)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	want := map[probe.Outcome]string{
		probe.Healthy: "healthy", probe.Warn: "warn", probe.Unhealthy: "unhealthy",
		probe.WrongVersion: "wrong-version", probe.WrongRevision: "wrong-revision",
		probe.ProbeError: "error", probe.Outcome(42): "Outcome(42)",
	}
	for o, s := range want {
		if got := o.String(); got != s {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, s)
		}
		if got, wantOK := o.OK(), o == probe.Healthy || o == probe.Warn; got != wantOK {
			t.Errorf("%v.OK() = %v, want %v", o, got, wantOK)
		}
	}
}
