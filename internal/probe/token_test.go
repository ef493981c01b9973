package probe

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/api/idtoken"
)

var _ TokenSource = IDTokenSource()

// fakeTokenEndpoint is an OAuth2 token endpoint that answers a service
// account's JWT-bearer grant with an ID token for the requested audience.
type fakeTokenEndpoint struct {
	mu        sync.Mutex
	audiences []string
}

func (f *fakeTokenEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	claims := jwtClaims(r.PostForm.Get("assertion"))
	aud, _ := claims["target_audience"].(string)
	f.mu.Lock()
	f.audiences = append(f.audiences, aud)
	f.mu.Unlock()
	idTok := fakeJWT(map[string]any{"aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()})
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id_token": idTok, "token_type": "Bearer", "expires_in": 3600})
}

func (f *fakeTokenEndpoint) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.audiences...)
}

func fakeJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2ln"
}

func jwtClaims(tok string) map[string]any {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func serviceAccountJSON(t *testing.T, tokenURI string) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("rsa.GenerateKey() = %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("x509.MarshalPKCS8PrivateKey() = %v", err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "local-project",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "prober@local-project.iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      tokenURI,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIDTokenSourceCachesPerAudience(t *testing.T) {
	tests := []struct {
		name string
		opt  func(json []byte) idtoken.ClientOption
		// ownClient: this idtoken code path takes its HTTP client from the
		// oauth2.HTTPClient context value.
		ownClient bool
	}{
		{
			name: "oauth2 path",
			//lint:ignore SA1019 the deprecated option selects the oauth2-based path that ADC key files take
			opt:       idtoken.WithCredentialsJSON,
			ownClient: true,
		},
		{
			name: "cloud.google.com/go/auth path",
			opt: func(json []byte) idtoken.ClientOption {
				return idtoken.WithAuthCredentialsJSON(idtoken.ServiceAccount, json)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := &fakeTokenEndpoint{}
			srv := httptest.NewServer(ep)
			t.Cleanup(srv.Close)
			ts := newIDTokenSource(tt.opt(serviceAccountJSON(t, srv.URL+"/token")))
			counted := &countingTransport{base: ts.client.Transport}
			ts.client.Transport = counted

			const svc, tag = "https://api-abc123-uc.a.run.app", "https://drill---api-abc123-uc.a.run.app"
			for _, aud := range []string{svc, svc, tag, svc} {
				tok, err := ts.Token(t.Context(), aud)
				if err != nil {
					t.Fatalf("Token(%q) = %v", aud, err)
				}
				if got := jwtClaims(tok)["aud"]; got != aud {
					t.Errorf("Token(%q) has aud %v, want %q", aud, got, aud)
				}
			}
			if got, want := ep.calls(), []string{svc, tag}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("token endpoint asked for %q, want %q (one fetch per audience)", got, want)
			}
			if n := counted.n.Load(); tt.ownClient && n != 2 {
				t.Errorf("token source's own client made %d requests, want 2", n)
			}
		})
	}
}

type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

func TestIDTokenSourceCancelled(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
		http.Error(w, "gone", http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) }) // runs before srv.Close
	ts := newIDTokenSource(idtoken.WithAuthCredentialsJSON(idtoken.ServiceAccount, serviceAccountJSON(t, srv.URL+"/token")))

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	tok, err := ts.Token(ctx, "https://api.example")
	if err == nil || tok != "" {
		t.Fatalf("Token() = %q, %v, want an error", tok, err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Token() took %v after its context ended", elapsed)
	}
	if _, err := ts.Token(t.Context(), ""); err == nil {
		t.Errorf("Token(empty audience) = nil error, want one")
	}
}
