package main

import (
	"bytes"
	"testing"

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
		obs := progress(&buf, tt.tty, false)
		for _, ev := range events {
			obs(ev)
		}
		if got := buf.String(); got != tt.want {
			t.Errorf("progress(tty=%v) wrote %q, want %q", tt.tty, got, tt.want)
		}
	}
}
