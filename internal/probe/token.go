package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"google.golang.org/api/idtoken"
)

// TokenSource yields an ID token for an audience (the service URL). It is
// implemented by IDTokenSource and by test fakes. Implementations must be safe
// for concurrent use and should return promptly when ctx is done.
type TokenSource interface {
	Token(ctx context.Context, audience string) (string, error)
}

// ErrNoToken is what a TokenSource returns to say "send no token": the probe
// goes out without an Authorization header (a public service answers it; a
// private one answers 401 or 403, which the probe reports).
var ErrNoToken = errors.New("no ID token")

// StaticToken is a TokenSource that gives the same token for every audience:
// one minted beforehand, e.g. by `gcloud auth print-identity-token`.
func StaticToken(token string) TokenSource { return staticToken(token) }

type staticToken string

func (t staticToken) Token(context.Context, string) (string, error) { return string(t), nil }

// CloudRunAudience is the ID-token audience for a Cloud Run URL: the service's
// own URL, also for its tag URLs ("https://canary---api-abc-uc.a.run.app" →
// "https://api-abc-uc.a.run.app"). Other URLs are their scheme://host.
func CloudRunAudience(u *url.URL) string {
	host := u.Host
	if strings.HasSuffix(u.Hostname(), ".run.app") {
		if _, rest, ok := strings.Cut(host, "---"); ok {
			host = rest
		}
	}
	return u.Scheme + "://" + host
}

// IDTokenSource returns a TokenSource backed by google.golang.org/api/idtoken
// and Application Default Credentials. It keeps one idtoken.NewTokenSource per
// audience, which caches the token until shortly before it expires.
//
// Creating a source (finding the credentials) happens on the first Token call
// for an audience, not here; its errors are returned then and not cached.
func IDTokenSource() TokenSource { return newIDTokenSource() }

type idTokenSource struct {
	opts   []idtoken.ClientOption
	client *http.Client // for token endpoints; never the probe's transport

	mu   sync.Mutex
	srcs map[string]oauth2.TokenSource
}

func newIDTokenSource(opts ...idtoken.ClientOption) *idTokenSource {
	return &idTokenSource{
		opts: opts,
		// Token endpoints get a client of their own with a deadline, so a
		// hung fetch ends, instead of http.DefaultClient. Proxies from the
		// environment apply here (not to probes), as they do for Google's
		// client libraries.
		client: &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
				TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout:   10 * time.Second,
				ResponseHeaderTimeout: 20 * time.Second,
				ForceAttemptHTTP2:     true,
				MaxIdleConns:          4,
				IdleConnTimeout:       90 * time.Second,
			},
		},
		srcs: make(map[string]oauth2.TokenSource),
	}
}

// Token returns the ID token for audience. The oauth2 token sources do not
// take a context, so the fetch runs in a goroutine and Token returns
// context.Cause(ctx) as soon as ctx is done; the fetch then finishes (and
// fills the cache) in the background.
func (s *idTokenSource) Token(ctx context.Context, audience string) (string, error) {
	if audience == "" {
		return "", errors.New("id token: empty audience")
	}
	// The source outlives this call and keeps the context it was created
	// with for its HTTP requests, so it must not be cancelled with ctx. The
	// oauth2.HTTPClient value gives idtoken's oauth2-based paths (such as a
	// key file named by GOOGLE_APPLICATION_CREDENTIALS) s.client; its
	// cloud.google.com/go/auth paths use their own client, also with a 30s
	// timeout.
	bg := context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, s.client)
	type result struct {
		tok string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		tok, err := s.fetch(bg, audience)
		ch <- result{tok, err}
	}()
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("id token for %s: %w", audience, context.Cause(ctx))
	case r := <-ch:
		return r.tok, r.err
	}
}

func (s *idTokenSource) fetch(ctx context.Context, audience string) (string, error) {
	ts, err := s.source(ctx, audience)
	if err != nil {
		return "", fmt.Errorf("id token for %s: %w", audience, err)
	}
	t, err := ts.Token()
	if err != nil {
		return "", fmt.Errorf("id token for %s: %w", audience, err)
	}
	// idtoken's sources (service account, metadata server, new auth library)
	// all put the ID token in AccessToken.
	if t.AccessToken == "" {
		return "", fmt.Errorf("id token for %s: credentials returned an empty token", audience)
	}
	return t.AccessToken, nil
}

func (s *idTokenSource) source(ctx context.Context, audience string) (oauth2.TokenSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ts, ok := s.srcs[audience]; ok {
		return ts, nil
	}
	ts, err := idtoken.NewTokenSource(ctx, audience, s.opts...)
	if err != nil {
		return nil, err
	}
	s.srcs[audience] = ts
	return ts, nil
}

// CloudRunTokens is the token policy for probes of real Cloud Run: an ID token
// from Source for https://*.run.app URLs (the service's own and its tag URLs,
// with the service URL as audience), none for any other URL. When Source
// cannot mint one (user credentials, no credentials), probes go without a
// token, and OnFallback hears of it once: public services still answer, a
// private one answers 401 or 403, which the probe reports.
type CloudRunTokens struct {
	Source TokenSource
	// OnFallback, when set, is called once, with the first error of Source.
	OnFallback func(error)

	once sync.Once
}

// Token implements TokenSource.
func (c *CloudRunTokens) Token(ctx context.Context, audience string) (string, error) {
	u, err := url.Parse(audience)
	if err != nil || u.Scheme != "https" || !strings.HasSuffix(u.Hostname(), ".run.app") {
		return "", ErrNoToken
	}
	tok, err := c.Source.Token(ctx, audience)
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		c.once.Do(func() {
			if c.OnFallback != nil {
				c.OnFallback(err)
			}
		})
		return "", ErrNoToken
	}
	return tok, nil
}
