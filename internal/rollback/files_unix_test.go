//go:build unix

package rollback

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO nobody writes to, /dev/zero, or a directory named as an input file
// never blocks or reads without end; the local journal must be a regular
// file.
func TestInputFilesNeverBlock(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if b, err := ReadFileCapped(fifo, 10); err != nil || len(b) != 0 {
		t.Errorf("FIFO with no writer: %q, %v; want empty", b, err)
	}
	if _, err := ReadFileCapped("/dev/zero", 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("/dev/zero: %v, want ErrTooLarge", err)
	}
	if _, err := ReadFileCapped(dir, 10); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Errorf("a directory: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
	j := FileJournal{Dir: t.TempDir()}
	ref := ServiceRef{Project: "p", Region: "r", Name: "api"}
	for _, target := range []string{fifo, "/dev/zero"} {
		_ = os.Remove(j.Path(ref))
		if err := os.Symlink(target, j.Path(ref)); err != nil {
			t.Fatal(err)
		}
		if _, err := j.Load(ref); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("journal at %s: %v, want not a regular file", target, err)
		}
	}
}
