package main

import (
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for image tags that move (the fake's registry).
func init() {
	// control METHOD PATH [BODY]: call the fake's control endpoint (as a
	// shell would with curl) and fail unless it answers 200; the answer goes
	// to the script's log.
	scriptCmds["control"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 || len(args) > 3 {
			ts.Fatalf("usage: control METHOD PATH [BODY]")
		}
		body := ""
		if len(args) == 3 {
			body = args[2]
		}
		rec := httptest.NewRecorder()
		fakeOf(ts).srv.ControlHandler().ServeHTTP(rec, httptest.NewRequest(args[0], args[1], strings.NewReader(body)))
		ts.Logf("control %s %s: %d %s", args[0], args[1], rec.Code, strings.TrimSpace(rec.Body.String()))
		if (rec.Code == http.StatusOK) == neg {
			ts.Fatalf("control %s %s answered %d: %s", args[0], args[1], rec.Code, rec.Body.String())
		}
	}
	// runs SERVICE REVISION VERSION: by the fake's own records, the revision
	// (a short name, or "latest" for the latest created one) runs VERSION:
	// its env's APP_VERSION, else that of the image it resolved to when it
	// was created.
	scriptCmds["runs"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: runs SERVICE REVISION VERSION")
		}
		srv := fakeOf(ts).srv
		svc := srv.Service(fullName(args[0]))
		if svc == nil {
			ts.Fatalf("no service %s", args[0])
		}
		name := fullName(args[0]) + "/revisions/" + args[1]
		if args[1] == "latest" {
			name = svc.GetLatestCreatedRevision()
		}
		rev := srv.Revision(name)
		if rev == nil || len(rev.GetContainers()) == 0 {
			ts.Fatalf("no revision %s", name)
		}
		got := ""
		if img, ok := srv.RevisionImage(name); ok {
			got = img.AppVersion
		}
		for _, e := range rev.GetContainers()[0].GetEnv() {
			if e.GetName() == "APP_VERSION" {
				got = e.GetValue()
			}
		}
		if (got == args[2]) == neg {
			ts.Fatalf("%s runs %q, want %s%q", shortResource(name), got, map[bool]string{true: "not "}[neg], args[2])
		}
	}
}
