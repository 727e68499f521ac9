package alex

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// tokenFetchTimeout bounds one token request. The fetch is shared by every
// caller waiting for it, so it does not run on any one caller's context.
const tokenFetchTimeout = 30 * time.Second

// tokenCache hands out one cached token to every caller and fetches a new one
// when the cached one is within refreshAhead of expiry or was rejected. At
// most one fetch runs at a time; callers wait for it (or for their own ctx).
type tokenCache struct {
	fetch        func(ctx context.Context) (*oauth2.Token, error)
	refreshAhead time.Duration
	now          func() time.Time

	mu       sync.Mutex
	tok      *oauth2.Token
	inflight *tokenCall
	fetches  atomic.Int64
}

type tokenCall struct {
	done chan struct{}
	tok  *oauth2.Token
	err  error
}

func (c *tokenCache) valid(t *oauth2.Token) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	if t.Expiry.IsZero() {
		return true
	}
	return c.now().Add(c.refreshAhead).Before(t.Expiry)
}

// Token returns a valid token, fetching one if needed.
func (c *tokenCache) Token(ctx context.Context) (*oauth2.Token, error) {
	c.mu.Lock()
	if c.valid(c.tok) {
		t := c.tok
		c.mu.Unlock()
		return t, nil
	}
	call := c.inflight
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		c.inflight = call
		go c.run(context.WithoutCancel(ctx), call)
	}
	c.mu.Unlock()

	select {
	case <-call.done:
		return call.tok, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *tokenCache) run(ctx context.Context, call *tokenCall) {
	ctx, cancel := context.WithTimeout(ctx, tokenFetchTimeout)
	defer cancel()
	c.fetches.Add(1)
	tok, err := c.fetch(ctx)
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = &TokenError{Kind: TokenOther, Err: errors.New("token endpoint returned no access token")}
	}
	c.mu.Lock()
	if err == nil {
		c.tok = tok
	}
	c.inflight = nil
	call.tok, call.err = tok, err
	c.mu.Unlock()
	close(call.done)
}

// Invalidate drops the cached token if it is the one ALEX rejected, so that
// many calls failing with the same token cause one new fetch, not many.
func (c *tokenCache) Invalidate(rejected string) {
	c.mu.Lock()
	if c.tok != nil && c.tok.AccessToken == rejected {
		c.tok = nil
	}
	c.mu.Unlock()
}

// Fetches reports how many token requests were made.
func (c *tokenCache) Fetches() int64 { return c.fetches.Load() }

// clientCredentialsFetch fetches tokens from Azure AD with the client
// credentials grant, form-encoded with the credentials in the body.
func clientCredentialsFetch(creds Credentials, hc *http.Client) func(ctx context.Context) (*oauth2.Token, error) {
	cfg := clientcredentials.Config{
		ClientID:     creds.ClientID,
		ClientSecret: creds.ClientSecret,
		TokenURL:     creds.tokenURL(),
		Scopes:       []string{creds.Scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return func(ctx context.Context) (*oauth2.Token, error) {
		tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
		if err != nil {
			return nil, classifyTokenError(err)
		}
		return tok, nil
	}
}

// tokenSourceFetch adapts a caller's oauth2.TokenSource.
func tokenSourceFetch(ts oauth2.TokenSource) func(ctx context.Context) (*oauth2.Token, error) {
	return func(context.Context) (*oauth2.Token, error) {
		tok, err := ts.Token()
		if err != nil {
			var te *TokenError
			if errors.As(err, &te) {
				return nil, err
			}
			return nil, classifyTokenError(err)
		}
		return tok, nil
	}
}

func classifyTokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		te := &TokenError{Code: re.ErrorCode, Description: re.ErrorDescription, Err: errors.New("token endpoint refused the request")}
		if re.Response != nil {
			te.Status = re.Response.StatusCode
		}
		switch TokenErrorKind(re.ErrorCode) {
		case TokenInvalidClient, TokenInvalidScope, TokenUnauthorizedClient, TokenInvalidRequest:
			te.Kind = TokenErrorKind(re.ErrorCode)
		default:
			te.Kind = TokenOther
		}
		return te
	}
	// Anything else never got an answer: DNS, refused, timeout, cancelled.
	return &TokenError{Kind: TokenNetwork, Err: err}
}
