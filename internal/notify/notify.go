package notify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/runrollback/runrollback/internal/report"
)

// When says which runs are notified (--notify-on).
type When string

// The values of --notify-on.
const (
	// OnFailure notifies every run whose exit code is not 0: a drill that
	// failed, aborted or stopped at another writer's change, a guard that
	// found the deploy unhealthy (rolled back or not), a restore not
	// confirmed, something left behind, a report that could not be written.
	OnFailure When = "failure"
	// OnAlways notifies every run that got as far as a report, passed or not.
	OnAlways When = "always"
	// OnNever notifies nothing (turns off a URL set in the environment).
	OnNever When = "never"
)

// ParseWhen parses --notify-on.
func ParseWhen(s string) (When, error) {
	w := When(s)
	if !slices.Contains([]When{OnFailure, OnAlways, OnNever}, w) {
		return "", fmt.Errorf("--notify-on %q: use failure, always or never", s)
	}
	return w, nil
}

// Wants says whether a run that ends with exitCode is notified.
func (w When) Wants(exitCode int) bool {
	switch w {
	case OnAlways:
		return true
	case OnFailure:
		return exitCode != 0
	}
	return false
}

// Target is a webhook URL that passed ParseTarget. It is a secret: String
// shows only its scheme and host.
type Target struct {
	u       *url.URL
	secrets []string
}

// ParseTarget checks a webhook URL: absolute, https, or http to a loopback
// host (127.0.0.0/8, ::1, localhost). Its errors never repeat the URL.
func ParseTarget(raw string) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("--notify-url is not an absolute URL (want https://HOST/PATH; the value is not shown, it may hold a secret)")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, errors.New("--notify-url must be https (http only to a loopback host such as 127.0.0.1): the summary and the URL's own key would travel in clear")
	default:
		return nil, fmt.Errorf("--notify-url scheme %q: want https", report.Sanitize(u.Scheme, 20))
	}
	t := &Target{u: u}
	t.secrets = secretsOf(raw, u)
	return t, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretsOf lists the parts of a webhook URL that may be its key, longest
// first: the whole URL, its path, query, fragment and password, and each path
// segment and query value that looks like a key (16 characters or more, or 8
// or more with a digit). Ordinary words ("services", "hooks", "v1") are left
// alone, so redacting never mangles the text around them.
func secretsOf(raw string, u *url.URL) []string {
	cands := []string{raw, u.String(), u.EscapedPath(), u.Path, u.RawQuery, u.Fragment}
	if p, ok := u.User.Password(); ok {
		cands = append(cands, p, u.User.String())
	}
	var parts []string
	for _, vs := range u.Query() {
		parts = append(parts, vs...)
	}
	parts = append(parts, strings.Split(u.Path, "/")...)
	parts = append(parts, strings.Split(u.EscapedPath(), "/")...)
	for _, p := range parts {
		if len(p) >= 16 || (len(p) >= 8 && strings.ContainsAny(p, "0123456789")) {
			cands = append(cands, p)
		}
	}
	var out []string
	for _, c := range cands {
		if len(c) >= 4 && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// String is the URL without anything that may be secret: scheme and host.
func (t *Target) String() string { return t.u.Scheme + "://" + t.u.Host + "/…" }

// Redact replaces every secret part of the URL found in s by "[redacted]".
func (t *Target) Redact(s string) string {
	for _, sec := range t.secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return s
}

// Defaults of a Poster.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultRetryDelay = time.Second
	// maxAnswer is how much of a refusal's body an error quotes.
	maxAnswer = 200
)

// Poster posts summaries. The zero value is ready to use.
type Poster struct {
	// Client makes the requests; nil means a client of its own (no
	// redirects, no cookies, proxies from the environment).
	Client *http.Client
	// Timeout bounds the whole post, retry included (default 10 s).
	Timeout time.Duration
	// RetryDelay is the pause before the one retry (default 1 s).
	RetryDelay time.Duration
	// UserAgent is sent as User-Agent (default "runrollback").
	UserAgent string
}

// Post sends s to t as JSON, once, and once more after a connection error or
// a 5xx answer, all within Timeout. Any 2xx answer is success. Text in s is
// redacted with t first. The error says what went wrong without the URL.
func (p *Poster) Post(ctx context.Context, t *Target, s Summary) error {
	body, err := json.Marshal(s.redacted(t.Redact))
	if err != nil {
		return fmt.Errorf("notify %s: %w", t, err)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	delay := p.RetryDelay
	if delay <= 0 {
		delay = DefaultRetryDelay
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := p.Client
	if client == nil {
		client = newClient()
	}
	var last error
	for attempt := 1; attempt <= 2; attempt++ {
		retry, err := p.once(ctx, client, t, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry || attempt == 2 {
			break
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fail(t, attempt, timeout, ctx, last)
		case <-timer.C:
		}
	}
	return fail(t, 2, timeout, ctx, last)
}

// fail is the error of a post that did not go through, redacted.
func fail(t *Target, attempts int, timeout time.Duration, ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = fmt.Errorf("no answer within %s", timeout)
	}
	msg := fmt.Sprintf("POST %s: %s", t, err)
	if attempts > 1 {
		msg += " (2 attempts)"
	}
	return errors.New(t.Redact(report.Sanitize(msg, 400)))
}

// once makes one attempt; retry says whether another is worth it.
func (p *Poster) once(ctx context.Context, client *http.Client, t *Target, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.u.String(), bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", cmp.Or(p.UserAgent, "runrollback"))
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error repeats the URL: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	msg := "HTTP " + resp.Status
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	if a := strings.TrimSpace(string(head)); a != "" {
		msg += ": " + a
	}
	return resp.StatusCode >= 500, errors.New(msg)
}

// newClient is the client of a Poster without one: no redirects (a redirect
// could carry the summary elsewhere), no cookies, no connection kept, proxies
// from the environment (HTTPS_PROXY, NO_PROXY), and dial and TLS bounds.
func newClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: DefaultTimeout,
			DisableKeepAlives:     true,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
