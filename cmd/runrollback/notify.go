package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/runrollback/runrollback/internal/notify"
	"github.com/runrollback/runrollback/internal/report"
	"github.com/runrollback/runrollback/internal/rollback"
)

func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "notify-url", Usage: "when the run ends, POST a JSON summary (Slack-compatible text) to this webhook `URL`: https, or http to loopback; env RUNROLLBACK_NOTIFY_URL. A secret: never printed"},
		&cli.StringFlag{Name: "notify-on", Value: string(notify.OnFailure), Usage: "when to notify: failure (any exit code but 0), always, or never"},
	}
}

// notifyOpts say where a run's summary goes, and when.
type notifyOpts struct {
	target *notify.Target
	when   notify.When
}

// parseNotify reads --notify-url (else RUNROLLBACK_NOTIFY_URL) and
// --notify-on; nil when nothing is to be posted. The URL is checked now,
// before any API call, and never repeated in an error.
func (e *env) parseNotify(c *cli.Context) (*notifyOpts, error) {
	when, err := notify.ParseWhen(c.String("notify-on"))
	if err != nil {
		return nil, usageError{err}
	}
	raw, from := c.String("notify-url"), "--notify-url"
	if !c.IsSet("notify-url") {
		raw, from = e.getenv("RUNROLLBACK_NOTIFY_URL"), "RUNROLLBACK_NOTIFY_URL"
	}
	if raw == "" {
		if c.IsSet("notify-on") && when != notify.OnNever {
			return nil, usageError{errors.New("--notify-on needs --notify-url URL (or RUNROLLBACK_NOTIFY_URL)")}
		}
		return nil, nil
	}
	t, err := notify.ParseTarget(raw)
	if err != nil {
		if from != "--notify-url" {
			err = fmt.Errorf("%s: %w", from, err)
		}
		return nil, usageError{err}
	}
	if when == notify.OnNever {
		return nil, nil
	}
	return &notifyOpts{target: t, when: when}, nil
}

// notify posts the run's summary when asked to. It runs after every report
// is written, so it never delays a restore; a failure is a warning on
// stderr and leaves the exit code alone.
func (e *env) notify(g globalOpts, reports []*rollback.Report, result string, code int) {
	n := g.notify
	if n == nil || !n.when.Wants(code) {
		return
	}
	s := notify.Summarize(g.command, reports, result, code, g.shardSection)
	// The run's context may be cancelled (an interrupted drill is worth
	// telling about); the post has its own bound.
	err := (&notify.Poster{}).Post(context.Background(), n.target, s)
	var msg string
	level := rollback.LevelWarn
	switch {
	case err != nil:
		msg = n.target.Redact(err.Error()) + "; the exit code is the run's"
	case g.verbose:
		msg, level = "posted the summary to "+n.target.String(), rollback.LevelInfo
	default:
		return
	}
	if e.log != nil {
		e.log.Event(rollback.Event{Time: timeNow(), Level: level, Step: "notify", Message: msg})
		return
	}
	fmt.Fprintf(e.stderr, "[%s] notify: %s\n", level, report.Sanitize(msg, 600))
}
