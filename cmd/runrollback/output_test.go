package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/runrollback/runrollback/internal/rollback"
)

func TestProgress(t *testing.T) {
	events := []rollback.Event{
		{Level: rollback.LevelRun, Step: "deploy"},
		{Level: rollback.LevelPass, Step: "deploy", Message: "deployed"},
		{Level: rollback.LevelRun, Step: "detect-tag"},
	}
	for _, tt := range []struct {
		tty  bool
		want string
	}{
		{false, "[PASS] deploy: deployed\n"},
		{true, "\r\033[K… deploy\r\033[K[PASS] deploy: deployed\n\r\033[K… detect-tag"},
	} {
		var buf bytes.Buffer
		obs := progress(&buf, tt.tty, false, false)
		for _, ev := range events {
			obs(ev)
		}
		if got := buf.String(); got != tt.want {
			t.Errorf("progress(tty=%v) wrote %q, want %q", tt.tty, got, tt.want)
		}
	}
}

func TestProgressVerbose(t *testing.T) {
	at := time.Date(2026, 11, 26, 3, 4, 5, 6e6, time.UTC)
	var buf bytes.Buffer
	obs := progress(&buf, false, false, true)
	obs(rollback.Event{Time: at, Level: rollback.LevelRun, Step: "deploy"})
	obs(rollback.Event{Time: at, Level: rollback.LevelPass, Step: "deploy", Message: "deployed"})
	want := "03:04:05.006 [INFO] deploy: started\n03:04:05.006 [PASS] deploy: deployed\n"
	if got := buf.String(); got != want {
		t.Errorf("verbose progress wrote %q, want %q", got, want)
	}
}
