package battery

import (
	"strings"

	runapi "google.golang.org/api/run/v2"
)

// The other people: writes made with the discovery client, as gcloud or a CI
// deploy would make them (read, change, write with the etag read).

// patchNoWait reads svc, lets change edit it and writes it back (with the
// etag read), without waiting for the operation.
func (f *fake) patchNoWait(svc string, change func(s *runapi.GoogleCloudRunV2Service)) *runapi.GoogleLongrunningOperation {
	f.t.Helper()
	s, err := f.judge.Projects.Locations.Services.Get(fullName(svc)).Do()
	if err != nil {
		f.t.Fatalf("writer: get %s: %v", svc, err)
	}
	change(s)
	op, err := f.judge.Projects.Locations.Services.Patch(fullName(svc), s).Do()
	if err != nil {
		f.t.Fatalf("writer: patch %s: %v", svc, err)
	}
	return op
}

// tt is a traffic target: "rev=pct", "rev=pct@tag", "LATEST=pct".
func tt(spec ...string) []*runapi.GoogleCloudRunV2TrafficTarget {
	var out []*runapi.GoogleCloudRunV2TrafficTarget
	for _, s := range spec {
		rev, rest, _ := strings.Cut(s, "=")
		pct, tag, _ := strings.Cut(rest, "@")
		t := &runapi.GoogleCloudRunV2TrafficTarget{Tag: tag, Type: "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", Revision: rev}
		if rev == "LATEST" {
			t.Type, t.Revision = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", ""
		}
		for _, c := range pct {
			t.Percent = t.Percent*10 + int64(c-'0')
		}
		out = append(out, t)
	}
	return out
}
