package fakeapp_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/runrollback/runrollback/fakes/fakeapp"
	"github.com/runrollback/runrollback/fakes/fakerun"
)

// timedGet is get with the time the answer took.
func timedGet(t *testing.T, url string) (answer, time.Duration) {
	t.Helper()
	start := time.Now()
	a := get(t, url)
	return a, time.Since(start)
}

func TestColdStart(t *testing.T) {
	const d = 300 * time.Millisecond
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, ""))
	r.set(stubSvc, "blue", rev("svc-00001-abc", "1.0.0", 100, ""))
	r.set(stubSvc, "green", rev("svc-00002-def", "1.1.0", 100, "health"))
	notReady := rev("svc-00003-ghi", "1.2.0", 100, "")
	notReady.Ready = false
	r.set(stubSvc, "red", notReady)
	p := stubPlane(t, r, fakeapp.WithColdStart(d))
	u := p.URLFor(stubSvc, "")

	// A request that arrives while the first instance starts waits for the same
	// instance, not for one of its own.
	second := make(chan time.Duration, 1)
	go func() {
		time.Sleep(d / 2)
		start := time.Now()
		resp, err := http.Get(u + "/")
		if err == nil {
			resp.Body.Close()
		}
		second <- time.Since(start)
	}()
	a, took := timedGet(t, u+"/")
	if a.status != 200 || a.servedBy != "svc-00001-abc" || took < d {
		t.Fatalf("first request: %d from %q after %v, want 200 from svc-00001-abc after at least %v", a.status, a.servedBy, took, d)
	}
	if took2 := <-second; took2 >= d-d/6 {
		t.Fatalf("a request sent %v into the cold start took %v: it should wait only for the instance already starting", d/2, took2)
	}

	// Warm now, on the service URL and on a tag URL of the same revision.
	if a, took := timedGet(t, u+"/api/v1/health/"); a.status != 200 || took >= d/2 {
		t.Fatalf("warm revision: %d after %v", a.status, took)
	}
	if a, took := timedGet(t, p.URLFor(stubSvc, "blue")+"/"); a.status != 200 || a.servedBy != "svc-00001-abc" || took >= d/2 {
		t.Fatalf("tag URL of the warm revision: %d from %q after %v", a.status, a.servedBy, took)
	}
	// Another revision starts cold; a broken one answers its failure only once up.
	if a, took := timedGet(t, p.URLFor(stubSvc, "green")+"/"); a.status != 503 || a.servedBy != "svc-00002-def" || took < d {
		t.Fatalf("cold broken revision: %d from %q after %v, want 503 after at least %v", a.status, a.servedBy, took, d)
	}
	// A revision that is not Ready never starts: the front end answers at once.
	if a, took := timedGet(t, p.URLFor(stubSvc, "red")+"/"); a.status != 503 || took >= d/2 {
		t.Fatalf("not-ready revision: %d after %v, want an immediate 503", a.status, took)
	}

	c := p.Counts(stubSvc)
	if c.ByRevision["svc-00001-abc"] != 4 || c.ByRevision["svc-00002-def"] != 1 || c.ByStatus[200] != 4 || c.ByStatus[503] != 2 {
		t.Fatalf("counts %+v", c)
	}
}

func TestColdStartClientGivesUp(t *testing.T) {
	r := newStub()
	r.set(stubSvc, "", rev("svc-00001-abc", "1.0.0", 100, ""))
	p := stubPlane(t, r, fakeapp.WithColdStart(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URLFor(stubSvc, "")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d during a one-minute cold start", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the client's deadline", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Counts(stubSvc).ByStatus[0] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("counts %+v, want the abandoned request under status 0", p.Counts(stubSvc))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNoColdStartByDefault(t *testing.T) {
	s, p := world(t, fakerun.DefaultWorld())
	if a, took := timedGet(t, serviceURL(t, s, p, apiName, "")+"/"); a.status != 200 || took >= 200*time.Millisecond {
		t.Fatalf("first request without WithColdStart: %d after %v", a.status, took)
	}
}
