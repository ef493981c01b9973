package rollback

import (
	"strings"
	"testing"
)

func TestValidateNames(t *testing.T) {
	tests := []struct {
		name    string
		check   func(string) error
		in      string
		wantErr string // substring; "" means valid
	}{
		{"service ok", ValidateServiceName, "api", ""},
		{"service digits", ValidateServiceName, "api-2", ""},
		{"service empty", ValidateServiceName, "", "--service"},
		{"service upper", ValidateServiceName, "Api", "lowercase"},
		{"service trailing dash", ValidateServiceName, "api-", "do not end"},
		{"service starts with digit", ValidateServiceName, "1api", "start with a letter"},
		{"service too long", ValidateServiceName, strings.Repeat("a", 50), "at most 49"},
		{"project ok", ValidateProjectID, "local-project", ""},
		{"project domain scoped", ValidateProjectID, "example.com:my-proj", ""},
		{"project short", ValidateProjectID, "abc", "6 to 30"},
		{"project empty", ValidateProjectID, "", "GOOGLE_CLOUD_PROJECT"},
		{"region ok", ValidateRegion, "us-central1", ""},
		{"region ok 2", ValidateRegion, "europe-west4", ""},
		{"region bad", ValidateRegion, "us central", "such as us-central1"},
		{"revision ok", ValidateRevisionName, "api-00002-def", ""},
		{"revision full name", ValidateRevisionName, "projects/p/locations/r/services/api/revisions/api-1", "short name"},
		{"tag ok", ValidateTag, "canary", ""},
		{"tag bad", ValidateTag, "Canary", "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("check(%q) = %v, want nil", tt.in, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("check(%q) = %v, want an error containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestParseSplit(t *testing.T) {
	got, err := ParseSplit("checkout-00002-bbb=90, checkout-00003-ccc=10@canary")
	if err != nil {
		t.Fatalf("ParseSplit() error = %v", err)
	}
	want := Split{{Revision: "checkout-00002-bbb", Percent: 90}, {Revision: "checkout-00003-ccc", Percent: 10, Tag: "canary"}}
	if !got.Equal(want) {
		t.Errorf("ParseSplit() = %v, want %v", got, want)
	}
	for _, bad := range []string{"a-1=50", "a-1=101,b-1=-1", "a-1=x", "a-1", "LATEST=50,LATEST=50", "a-1=50@t,b-1=50@t"} {
		if _, err := ParseSplit(bad); err == nil {
			t.Errorf("ParseSplit(%q) = nil error, want an error", bad)
		}
	}
}

func FuzzParseSplit(f *testing.F) {
	f.Add("a-1=90,b-2=10@canary")
	f.Add("LATEST=100")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseSplit(text)
		if err != nil {
			return
		}
		var sum int32
		for _, tg := range s {
			sum += tg.Percent
		}
		if sum != 100 {
			t.Fatalf("ParseSplit(%q) = %v, sums to %d", text, s, sum)
		}
		// Round trip through the text form.
		back, err := ParseSplit(s.String())
		if err != nil || !back.Equal(s) {
			t.Fatalf("ParseSplit(%q) round trip = %v, %v; want %v", s.String(), back, err, s)
		}
	})
}
