package probe

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults used when the matching Checker field is zero.
const (
	DefaultHealthPath       = "/api/v1/health/"
	DefaultTimeout          = 5 * time.Second
	DefaultMaxBody    int64 = 1 << 20
)

const (
	userAgent      = "runrollback-probe"
	cacheBustParam = "_rr"
	maxHeaderBytes = 64 << 10
	snippetBytes   = 512
)

// Checker probes a health endpoint. All fields are optional and the zero value
// is usable; a Checker must not be modified while in use, and is then safe for
// concurrent use.
type Checker struct {
	// HealthPath is appended to the base URL's own path (base https://x/app
	// probes https://x/app/api/v1/health/). It may carry a query
	// ("/health?full=1"). Default DefaultHealthPath.
	HealthPath string
	// VersionField is an RFC 6901 JSON pointer to the version, e.g.
	// "/build/version". Empty means: "releaseId" then "version" for
	// application/health+json, else "version". A malformed pointer makes
	// every attempt a ProbeError; check flags with ValidateVersionField.
	VersionField string
	// Timeout bounds one attempt: token, connect, TLS, headers and body.
	// Default DefaultTimeout.
	Timeout time.Duration
	// MaxBody is the most body bytes read and parsed; a larger body is
	// Unhealthy. Default DefaultMaxBody (1 MiB).
	MaxBody int64
	// Transport sends the request. Default: a fresh *http.Transport per
	// attempt, with keep-alives, proxies and compression off, TLS 1.2 or
	// later, and a 64 KiB limit on response headers. Redirects are never
	// followed and no cookie jar is used, whatever the transport.
	Transport http.RoundTripper
	// TokenSource, when set, supplies an ID token sent as
	// "Authorization: Bearer" to the allowed host.
	TokenSource TokenSource
	// Audience is the ID token audience. Default: CloudRunAudience of the URL
	// being probed — the service's run.app URL, also for its tag URLs, since
	// Cloud Run documents the service URL (or a configured custom audience)
	// as the accepted audience; scheme://host for other URLs. Set it for a
	// custom domain. A TokenSource may return ErrNoToken to send none.
	Audience string
	// AllowedHosts lists host[:port] values that may be probed; an entry
	// without a port allows any port on that host. Empty allows only the
	// host of the URL passed to Check. A URL whose host is not allowed gets
	// no request (and no token): the attempt is a ProbeError.
	AllowedHosts []string
	// Now is the clock used for Attempt.Duration and Verdict.Elapsed.
	// Default time.Now.
	Now func() time.Time
}

// Cache-busting values: a per-process random prefix, so a cache that kept an
// answer from an earlier run cannot match, and a counter.
var (
	bustPrefix = strconv.FormatUint(rand.Uint64()>>32, 36)
	bustSeq    atomic.Uint64
)

func nextBuster() string {
	return bustPrefix + "-" + strconv.FormatUint(bustSeq.Add(1), 10)
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checker) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Checker) maxBody() int64 {
	if c.MaxBody > 0 {
		return c.MaxBody
	}
	return DefaultMaxBody
}

// Check probes baseURL once and classifies the answer. It never returns an
// error: failures are Attempts with Outcome ProbeError and Err set.
func (c *Checker) Check(ctx context.Context, baseURL string, exp Expect) Attempt {
	start := c.now()
	a := c.check(ctx, baseURL, exp)
	a.Duration = c.now().Sub(start)
	a.Detail = escape(a.Detail)
	a.Status = escape(a.Status)
	a.Version = escape(a.Version)
	a.Revision = escape(a.Revision)
	return a
}

func (c *Checker) check(ctx context.Context, baseURL string, exp Expect) Attempt {
	u, err := c.healthURL(baseURL)
	if err != nil {
		return failed(Attempt{URL: shownURL(baseURL)}, err)
	}
	a := Attempt{URL: u.String()}
	if !hostAllowed(c.AllowedHosts, u) {
		return failed(a, fmt.Errorf("host %s is not among the allowed hosts %v: no request sent", u.Host, c.AllowedHosts))
	}
	ptr, err := parsePointer(c.VersionField)
	if err != nil {
		return failed(a, err)
	}

	timeout := c.timeout()
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// gotConn tells a slow app (connected, then no answer) from an
	// unreachable one (no connection): only the first proves a failure.
	var gotConn atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { gotConn.Store(true) },
	})

	req, err := http.NewRequestWithContext(actx, http.MethodGet, withQuery(u, cacheBustParam, nextBuster()), nil)
	if err != nil {
		return failed(a, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Pragma", "no-cache")
	req.Header.Set("Accept", "application/health+json, application/json;q=0.9, */*;q=0.5")
	if c.TokenSource != nil {
		aud := cmp.Or(c.Audience, CloudRunAudience(u))
		tok, err := c.TokenSource.Token(actx, aud)
		switch {
		case ctx.Err() != nil:
			return failed(a, fmt.Errorf("probe stopped: %w", context.Cause(ctx)))
		case errors.Is(err, ErrNoToken):
			tok = ""
		case err != nil:
			// Never wrapped in ErrTimeout: a slow token fetch says nothing
			// about the app.
			return failed(a, fmt.Errorf("get ID token for audience %s: %w", aud, err))
		case tok == "":
			return failed(a, fmt.Errorf("get ID token for audience %s: empty token", aud))
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}

	client, done := c.client(timeout)
	defer done()
	resp, err := client.Do(req)
	if err != nil {
		return failed(a, c.requestErr(ctx, actx, err, timeout, gotConn.Load()))
	}
	a.StatusCode = resp.StatusCode
	body, over, err := readCapped(resp.Body, c.maxBody())
	if err != nil {
		return failed(a, fmt.Errorf("read body: %w", c.requestErr(ctx, actx, err, timeout, true)))
	}
	return classify(a, resp, body, over, c.maxBody(), ptr, exp)
}

func failed(a Attempt, err error) Attempt {
	a.Outcome = ProbeError
	a.Err = err
	a.Detail = err.Error()
	return a
}

// requestErr turns a transport error into Attempt.Err: the caller's
// cancellation, a timeout after connecting (wrapping ErrTimeout), or the
// underlying network error without the url.Error wrapper (which would repeat
// the URL with its cache-busting query).
func (c *Checker) requestErr(parent, actx context.Context, err error, timeout time.Duration, connected bool) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if parent.Err() != nil {
		return fmt.Errorf("probe stopped: %w", context.Cause(parent))
	}
	var te interface{ Timeout() bool }
	timedOut := actx.Err() != nil || (errors.As(err, &te) && te.Timeout())
	// An injected transport may not report GotConn; then only a dial error
	// counts as "not connected".
	connected = connected || c.Transport != nil
	if timedOut && connected && !isDialError(err) {
		return fmt.Errorf("%w (%s): %w", ErrTimeout, timeout, err)
	}
	if timedOut {
		return fmt.Errorf("no connection within %s: %w", timeout, err)
	}
	return err
}

func isDialError(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// client returns the HTTP client for one attempt and a cleanup function.
func (c *Checker) client(timeout time.Duration) (*http.Client, func()) {
	rt, done := c.Transport, func() {}
	if rt == nil {
		t := newTransport(timeout)
		rt, done = t, t.CloseIdleConnections
	}
	return &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, done
}

// newTransport builds a transport used for one attempt only.
func newTransport(timeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	return &http.Transport{
		Proxy:                  nil, // a probe goes straight to the service
		DialContext:            d.DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
}

// readCapped reads at most max bytes of body and reports whether there was
// more. It never reads more than max+1 bytes, so a huge body costs nothing
// beyond the cap; closing the body then drops the connection, which is never
// reused anyway. A body within the cap has been read to EOF, so there is
// nothing left to drain.
func readCapped(body io.ReadCloser, max int64) (b []byte, over bool, err error) {
	defer body.Close()
	b, err = io.ReadAll(io.LimitReader(body, max+1))
	if int64(len(b)) > max {
		return b[:max], true, nil
	}
	return b, false, err
}

// healthURL validates baseURL and appends the health path and its query.
func (c *Checker) healthURL(baseURL string) (*url.URL, error) {
	if err := ValidateURL(baseURL); err != nil {
		return nil, err
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err // unreachable: ValidateURL parsed it
	}
	hp := cmp.Or(c.HealthPath, DefaultHealthPath)
	hpPath, hpQuery, _ := strings.Cut(hp, "?")
	u = u.JoinPath(hpPath)
	if strings.HasSuffix(hpPath, "/") && !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	if hpQuery != "" {
		if u.RawQuery == "" {
			u.RawQuery = hpQuery
		} else {
			u.RawQuery += "&" + hpQuery
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// withQuery returns u as a string with key=value added to its query.
func withQuery(u *url.URL, key, value string) string {
	v := *u
	kv := url.QueryEscape(key) + "=" + url.QueryEscape(value)
	if v.RawQuery == "" {
		v.RawQuery = kv
	} else {
		v.RawQuery += "&" + kv
	}
	return v.String()
}

// shownURL is baseURL as safe to report: redacted when it parses, escaped
// when it does not, and never with credentials.
func shownURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(raw, "@") {
		return "(URL with user info redacted)"
	}
	return escape(raw)
}

// hostAllowed reports whether u's host is in allowed; an empty list allows
// any host (the caller's own base URL).
func hostAllowed(allowed []string, u *url.URL) bool {
	if len(allowed) == 0 {
		return true
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if strings.Contains(a, "://") {
			if au, err := url.Parse(a); err == nil {
				a = au.Host
			}
		}
		ah, ap, err := net.SplitHostPort(a)
		if err != nil { // no port
			ah, ap = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), ""
		}
		ah = strings.TrimSuffix(ah, ".")
		if ah == host && (ap == "" || ap == port) {
			return true
		}
	}
	return false
}
