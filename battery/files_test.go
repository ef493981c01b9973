package battery

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hostile makes a path of the given kind in dir: /dev/zero, a FIFO nobody
// writes to or reads from, a directory, or a 1 GiB sparse file of zeros.
func hostile(t *testing.T, dir, kind string) string {
	t.Helper()
	p := filepath.Join(dir, "hostile-"+kind)
	switch kind {
	case "dev-zero":
		return "/dev/zero"
	case "fifo":
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	case "dir":
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	case "sparse":
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1 << 30); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return p
}

var hostileKinds = []string{"dev-zero", "fifo", "dir", "sparse"}

// files: every flag or variable that names a file, pointed at hostile ones.
func hostileFiles() family {
	fam := family{section: "Files", id: "files", name: "file flags pointed at /dev/zero, a FIFO, a directory, a 1 GiB sparse file",
		found:   "every FIFO hung the run for good (--report, --seed, --restore-from, --services-file, --id-token-file, and recover's local journal), each at open(2); recover read a local journal that is a link to /dev/zero without end. Fixed: files are opened without blocking, a FIFO nobody writes to reads as empty, reads from pipes and devices wait 10 s at most, a --report FIFO nobody reads is exit 2 before any API call, and the local journal must be a regular file (else the service's copy is used).",
		over:    "--report, --seed, --restore-from, --services-file, --id-token-file, the local journal (RUNROLLBACK_STATE_DIR's file for the service, read by recover and written by test) × the 4 kinds",
		asserts: "no hang (60 s at most), no unbounded read; an input file: exit 2 before any call that writes, nothing changed; --report: the drill runs, then the report is written, or exit 2 before any API call or 6 after; the journal: a clear error and nothing changed, or a run that works around it; the service as it was"}
	type flagCase struct {
		name string
		run  func(t *testing.T, f *fake, m machine, path string) *proc
		// input: bad input, refused before any write.
		input bool
	}
	cases := []flagCase{
		{"report", func(t *testing.T, f *fake, m machine, path string) *proc {
			return f.start(m, nil, drillArgs("api", "--report", path)...)
		}, false},
		{"restore-from", func(t *testing.T, f *fake, m machine, path string) *proc {
			return f.start(m, nil, "guard", "--service", "api", "--restore-from", path)
		}, true},
		{"services-file", func(t *testing.T, f *fake, m machine, path string) *proc {
			return f.start(m, nil, "test", "--services-file", path)
		}, true},
		{"id-token-file", func(t *testing.T, f *fake, m machine, path string) *proc {
			return f.start(m, nil, drillArgs("api", "--id-token-file", path)...)
		}, true},
		{"journal-recover", func(t *testing.T, f *fake, m machine, path string) *proc {
			placeJournal(t, m, path)
			return f.start(m, nil, recoverArgs("api")...)
		}, false},
		{"journal-test", func(t *testing.T, f *fake, m machine, path string) *proc {
			placeJournal(t, m, path)
			return f.start(m, nil, drillArgs("api")...)
		}, false},
	}
	for _, c := range cases {
		for _, kind := range hostileKinds {
			fam.variants = append(fam.variants, variant{c.name + "/" + kind, func(t *testing.T) {
				f := startFake(t)
				before := f.read("api")
				m := f.machine("a")
				w0 := f.writes()
				p := c.run(t, f, m, hostile(t, m.dir, kind))
				p.wait()
				out := p.output()
				switch {
				case c.input:
					p.expectCode(2)
					if w := f.writes() - w0; w != 0 {
						t.Errorf("exit 2 after %d writes", w)
					}
				case c.name == "report":
					p.expectCode(0, 2, 6)
					if p.code == 2 && f.writes() != w0 {
						t.Errorf("exit 2 after writes")
					}
				default:
					p.expectCode(0, 2, 3)
				}
				if p.code != 0 && len(strings.TrimSpace(out)) == 0 {
					t.Errorf("exit %d and nothing said", p.code)
				}
				f.same(before, "after the run")
			}})
		}
	}
	for _, kind := range hostileKinds {
		fam.variants = append(fam.variants, variant{"seed/" + kind, func(t *testing.T) {
			f := startFake(t) // a fake for the binary path only
			m := f.machine("a")
			p := f.run(m, nil, "fake", "--addr", "127.0.0.1:0", "--seed", hostile(t, m.dir, kind))
			p.expectCode(2)
			if !strings.Contains(p.output(), "seed") {
				t.Errorf("exit 2 without naming --seed:\n%s", p.output())
			}
		}})
	}
	return fam
}

// placeJournal puts path where machine m keeps the local journal of api: the
// path itself (a directory), or a symbolic link to it.
func placeJournal(t *testing.T, m machine, path string) {
	t.Helper()
	journal := filepath.Join(m.dir, "state", fmt.Sprintf("journal-%s-%s-api.json", project, region))
	if err := os.Symlink(path, journal); err != nil {
		t.Fatal(err)
	}
}
