package battery

import (
	"strings"
	"time"

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

// patch is patchNoWait, then waits for the operation.
func (f *fake) patch(svc string, change func(s *runapi.GoogleCloudRunV2Service)) {
	f.t.Helper()
	op := f.patchNoWait(svc, change)
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for !op.Done {
		if time.Now().After(deadline) {
			f.t.Fatalf("writer: operation %s never finished", op.Name)
		}
		time.Sleep(5 * time.Millisecond)
		if op, err = f.judge.Projects.Locations.Operations.Get(op.Name).Do(); err != nil {
			f.t.Fatalf("writer: get operation: %v", err)
		}
	}
	if op.Error != nil {
		f.t.Fatalf("writer: patch %s failed: %s", svc, op.Error.Message)
	}
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

// setTraffic is a 'gcloud run services update-traffic'.
func (f *fake) setTraffic(svc string, spec ...string) {
	f.patch(svc, func(s *runapi.GoogleCloudRunV2Service) {
		s.Traffic = tt(spec...)
	})
}

// setAnnotation is someone's edit of one annotation (the rest kept).
func (f *fake) setAnnotation(svc, key, value string) {
	f.patch(svc, func(s *runapi.GoogleCloudRunV2Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[key] = value
	})
}
