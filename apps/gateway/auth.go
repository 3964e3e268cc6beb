package gateway

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tavernhq/tavern/apps/gateway/wire"
)

// Auth modes of the gateway section of sys.config.
const (
	AuthDev = "dev" // hello names the user; no token
	AuthJWT = "jwt" // hello carries an HS256 JWT signed with the secret
)

// MaxUserLen is the longest user id, in bytes.
const MaxUserLen = 64

// identity is who a hello proved to be.
type identity struct {
	user     string
	allowAll bool
	boards   []string // sorted, without duplicates; ignored when allowAll
}

// authenticator checks hello messages. It holds the JWT secret, which it
// never prints.
type authenticator struct {
	mode   string
	secret []byte
}

// publicError is an authentication failure with the message the client
// may see; the wrapped error is for the log.
type publicError struct {
	public string
	err    error
}

func (e publicError) Error() string {
	if e.err == nil {
		return e.public
	}
	return e.public + ": " + e.err.Error()
}
func (e publicError) Unwrap() error { return e.err }

func refuse(public string, err error) error { return publicError{public: public, err: err} }

// Claims is the payload of a Tavern JWT: sub is the user id, boards the
// board ids the user may join (["*"]: any), exp its expiry (required).
type Claims struct {
	Boards []string `json:"boards"`
	jwt.RegisteredClaims
}

// authenticate checks a hello.
//
// dev: user is required and must be a valid user id; a token is ignored.
// jwt: token is required; it must be an HS256 JWT (no other alg, "none"
// included) signed with the secret, with exp in the future and a sub that
// is a valid user id; boards lists the joinable boards, ["*"] any board,
// absent or empty none. The hello's user field is ignored.
//
// A valid user id is 1 to 64 bytes of UTF-8 with no control characters
// (the same rule in both modes: it is echoed in presence and ev messages).
func (a *authenticator) authenticate(req *wire.Request, now time.Time) (identity, error) {
	switch a.mode {
	case AuthDev:
		if req.User == "" {
			return identity{}, refuse("hello: user is required", nil)
		}
		if err := validUser(req.User); err != nil {
			return identity{}, refuse("hello: "+err.Error(), nil)
		}
		return identity{user: req.User, allowAll: true}, nil
	case AuthJWT:
		if req.Token == "" {
			return identity{}, refuse("hello: token is required", nil)
		}
		var c Claims
		p := jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(func() time.Time { return now }),
		)
		if _, err := p.ParseWithClaims(req.Token, &c, func(*jwt.Token) (any, error) { return a.secret, nil }); err != nil {
			if errors.Is(err, jwt.ErrTokenExpired) {
				return identity{}, refuse("hello: token expired", err)
			}
			return identity{}, refuse("hello: invalid token", err)
		}
		if err := validUser(c.Subject); err != nil {
			return identity{}, refuse("hello: token sub: "+err.Error(), nil)
		}
		id := identity{user: c.Subject}
		for _, b := range c.Boards {
			if b == "*" {
				id.allowAll = true
			}
		}
		if !id.allowAll {
			id.boards = slices.Compact(slices.Sorted(slices.Values(c.Boards)))
		}
		return id, nil
	}
	return identity{}, refuse("hello: authentication is not configured", fmt.Errorf("unknown auth mode %q", a.mode))
}

func validUser(u string) error {
	if len(u) == 0 || len(u) > MaxUserLen {
		return fmt.Errorf("user must be 1 to %d bytes", MaxUserLen)
	}
	if !utf8.ValidString(u) {
		return errors.New("user must be valid UTF-8")
	}
	for _, r := range u {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return errors.New("user must not contain control characters")
		}
	}
	return nil
}
