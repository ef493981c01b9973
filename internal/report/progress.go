package report

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/runrollback/runrollback/internal/rollback"
)

// Progress writes a run's events to W as they happen, one line each (Line).
// Safe for concurrent use.
//
// On a terminal (TTY) the step in progress and the probe attempt in flight
// show on one live line, "… detect-tag", that the next line replaces. Elsewhere
// (CI logs, pipes, files) nothing is ever replaced: a step start is left out
// (unless Verbose), and every note (a wait starting, a probe attempt) is a
// line of its own, so a log shows what a long wait is doing. Verbose adds a
// line when each step starts and a UTC timestamp on every line.
type Progress struct {
	W                   io.Writer
	TTY, Color, Verbose bool

	mu   sync.Mutex
	live bool // a live line is on the terminal
}

const clearLine = "\r\033[K"

// maxLive is how many runes a live line shows: it must fit a terminal line,
// or the next \r cannot replace it.
const maxLive = 100

// Event writes one event of a run.
func (p *Progress) Event(ev rollback.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Level == rollback.LevelRun {
		switch {
		case p.Verbose:
			p.line(ev.Time, rollback.Event{Level: rollback.LevelInfo, Step: ev.Step, Message: "started"})
		case p.TTY:
			p.liveLine("… " + sanitize(ev.Step, 80))
		}
		return
	}
	p.line(ev.Time, ev)
}

// Note writes a passing remark while a step waits: a live line on a
// terminal, a line of its own elsewhere.
func (p *Progress) Note(ev rollback.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.TTY && !p.Verbose {
		s := sanitize(ev.Step, 64)
		if msg := sanitize(ev.Message, 0); msg != "" {
			s += ": " + msg
		}
		p.liveLine("… " + s)
		return
	}
	p.line(ev.Time, ev)
}

// Close clears a live line, so what follows starts on a clean line.
func (p *Progress) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live {
		_, _ = io.WriteString(p.W, clearLine)
		p.live = false
	}
}

func (p *Progress) line(at time.Time, ev rollback.Event) {
	var b strings.Builder
	if p.live {
		b.WriteString(clearLine)
		p.live = false
	}
	if p.Verbose {
		if at.IsZero() {
			at = time.Now()
		}
		b.WriteString(at.UTC().Format("15:04:05.000 "))
	}
	b.WriteString(Line(ev, p.Color))
	b.WriteString("\n")
	_, _ = io.WriteString(p.W, b.String())
}

func (p *Progress) liveLine(s string) {
	_, _ = io.WriteString(p.W, clearLine+cutTokens(tokens(s), maxLive))
	p.live = true
}

// Log writes a run's events as structured logs, one JSON object a line, in
// the shape Google Cloud Logging reads from a container's output
// (https://cloud.google.com/logging/docs/structured-logging): "severity"
// (DEBUG, INFO, WARNING, ERROR), "message", "time", and the event's fields:
// "event" (step, note or result), "command", "service", "step", "status"
// (the level word: PASS, FAIL, WARN, INFO, RUN), "duration_ms"; a result adds
// "result", "exit_code", "timings_ms" and "exposure". Text is sanitized.
// Safe for concurrent use.
type Log struct {
	logger  *slog.Logger
	command string
	service string
}

// NewLog writes structured logs to w for a run of command on service (""
// for several services: their events carry the service in the step, "name:
// step", and the log splits it out).
func NewLog(w io.Writer, command, service string) *Log {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severityOf(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			case slog.TimeKey:
				a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
			}
			return a
		},
	})
	return &Log{logger: slog.New(h), command: command, service: service}
}

func severityOf(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

func levelOf(l rollback.Level) slog.Level {
	switch l {
	case rollback.LevelFail:
		return slog.LevelError
	case rollback.LevelWarn:
		return slog.LevelWarn
	case rollback.LevelRun:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Event logs one event of a run.
func (l *Log) Event(ev rollback.Event) { l.log("step", levelOf(ev.Level), ev) }

// Note logs a remark while a step waits (a probe attempt), at DEBUG.
func (l *Log) Note(ev rollback.Event) { l.log("note", slog.LevelDebug, ev) }

// Close does nothing: every record is complete when written.
func (l *Log) Close() {}

func (l *Log) log(kind string, level slog.Level, ev rollback.Event) {
	service, step := l.service, ev.Step
	if service == "" {
		if name, rest, ok := strings.Cut(step, ": "); ok {
			service, step = name, rest
		}
	}
	attrs := []slog.Attr{
		slog.String("event", kind),
		slog.String("command", l.command),
		slog.String("service", sanitize(service, 128)),
		slog.String("step", sanitize(step, 64)),
		slog.String("status", string(ev.Level)),
	}
	if ev.Duration != 0 {
		attrs = append(attrs, slog.Int64("duration_ms", ev.Duration.Milliseconds()))
	}
	msg := sanitize(ev.Message, MaxLine)
	if msg == "" {
		msg = sanitize(step, 64)
	}
	l.logger.LogAttrs(context.Background(), level, msg, attrs...)
}

// Result logs the end of a run: its verdict, exit code and timings.
func (l *Log) Result(r *rollback.Report) {
	if r == nil {
		return
	}
	level := slog.LevelInfo
	switch r.Result {
	case rollback.ResultPass:
	case rollback.ResultAborted:
		level = slog.LevelWarn
	default:
		level = slog.LevelError
	}
	t := r.Timings
	first, _, _ := strings.Cut(Verdict(r, false), "\n")
	l.logger.LogAttrs(context.Background(), level, first,
		slog.String("event", "result"),
		slog.String("command", sanitize(r.Command, 64)),
		slog.String("service", sanitize(r.Service.Name, 128)),
		slog.String("project", sanitize(r.Service.Project, 64)),
		slog.String("region", sanitize(r.Service.Region, 64)),
		slog.String("result", sanitize(r.Result, 32)),
		slog.Int("exit_code", r.ExitCode),
		slog.Group("timings_ms", slog.Int64("detect_tag", t.DetectTag), slog.Int64("detect", t.Detect),
			slog.Int64("restore", t.Restore), slog.Int64("verify", t.Verify), slog.Int64("total", t.Total)),
		slog.Group("exposure", slog.Int("percent", int(r.Exposure.Percent)), slog.Int64("ms", r.Exposure.MS)),
		slog.Bool("traffic_restored", r.TrafficRestored),
	)
}
