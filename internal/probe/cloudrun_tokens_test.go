package probe_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/runrollback/runrollback/internal/probe"
)

type tokenFunc func(ctx context.Context, audience string) (string, error)

func (f tokenFunc) Token(ctx context.Context, audience string) (string, error) {
	return f(ctx, audience)
}

// ID tokens go only to https://*.run.app URLs; when none can be minted,
// probes go without one and the caller hears of it once.
func TestCloudRunTokens(t *testing.T) {
	var asked atomic.Int32
	good := &probe.CloudRunTokens{Source: tokenFunc(func(_ context.Context, aud string) (string, error) {
		asked.Add(1)
		return "tok-for-" + aud, nil
	})}
	ctx := context.Background()
	for _, aud := range []string{"http://api-x.run.app", "https://example.com", "https://run.app.example.com", "::bad"} {
		if tok, err := good.Token(ctx, aud); !errors.Is(err, probe.ErrNoToken) || tok != "" {
			t.Errorf("Token(%q) = %q, %v; want no token", aud, tok, err)
		}
	}
	if asked.Load() != 0 {
		t.Errorf("the source was asked %d times for URLs that are not Cloud Run's", asked.Load())
	}
	if tok, err := good.Token(ctx, "https://api-abc-uc.a.run.app"); err != nil || tok != "tok-for-https://api-abc-uc.a.run.app" {
		t.Errorf("Token for run.app = %q, %v", tok, err)
	}

	var fallbacks atomic.Int32
	bad := &probe.CloudRunTokens{
		Source:     tokenFunc(func(context.Context, string) (string, error) { return "", errors.New("user credentials") }),
		OnFallback: func(error) { fallbacks.Add(1) },
	}
	for range 3 {
		if _, err := bad.Token(ctx, "https://api-abc-uc.a.run.app"); !errors.Is(err, probe.ErrNoToken) {
			t.Errorf("failing source: %v, want no token", err)
		}
	}
	if fallbacks.Load() != 1 {
		t.Errorf("OnFallback called %d times, want once", fallbacks.Load())
	}

	// A cancelled probe keeps its own error: that is no fallback.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	quiet := &probe.CloudRunTokens{
		Source:     tokenFunc(func(ctx context.Context, _ string) (string, error) { return "", ctx.Err() }),
		OnFallback: func(error) { t.Error("OnFallback on a cancelled context") },
	}
	if _, err := quiet.Token(cctx, "https://api-abc-uc.a.run.app"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestEndsWithHealthPath(t *testing.T) {
	for _, tt := range []struct {
		base, path, root string
		ok               bool
	}{
		{"https://x/api/v1/health/", "/api/v1/health/", "https://x", true},
		{"https://x/app/api/v1/health", "/api/v1/health/", "https://x/app", true},
		{"https://x/api/v1/health/?q=1", "/api/v1/health/", "https://x?q=1", true},
		{"https://x/healthz", "/healthz?full=1", "https://x", true},
		{"https://x", "/api/v1/health/", "", false},
		{"https://x/app", "/api/v1/health/", "", false},
		{"https://x/", "/", "", false},
	} {
		root, ok := probe.EndsWithHealthPath(tt.base, tt.path)
		if ok != tt.ok || root != tt.root {
			t.Errorf("EndsWithHealthPath(%q, %q) = %q, %v; want %q, %v", tt.base, tt.path, root, ok, tt.root, tt.ok)
		}
	}
}
