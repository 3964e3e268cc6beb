package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tavernhq/tavern/apps/gateway"
	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/sysconfig"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

func token(t *testing.T, method jwt.SigningMethod, key any, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(sub string, boards []string, exp time.Duration) gateway.Claims {
	c := gateway.Claims{Boards: boards}
	c.Subject = sub
	if exp != 0 {
		c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(exp))
	}
	return c
}

func TestHelloJWT(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		n := gatewaytest.Start(t, gatewaytest.Options{DSN: dsn, Tweak: func(c *sysconfig.Config) {
			c.Gateway.Auth = sysconfig.Auth{Mode: "jwt", Secret: sysconfig.Secret(testSecret)}
		}})
		key := []byte(testSecret)
		b1, b2 := newBoard(), newBoard()

		t.Run("good", func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			tok := token(t, jwt.SigningMethodHS256, key, claims("alice", []string{b1}, time.Hour))
			c.Send(msg{"t": "hello", "ref": "1", "token": tok, "user": "mallory"})
			w := c.Expect("welcome")
			if w.Str("user") != "alice" || w.Str("ref") != "1" || w.Str("node") != n.Name {
				t.Fatalf("welcome: %v", w)
			}
			c.Name = "alice"
			c.JoinFull(b1)
			c.Send(msg{"t": "join", "ref": "2", "board": b2})
			c.ExpectError("forbidden", "2")
			pingNext(t, c)
			_, ref := c.Op(b2, chat("x"))
			c.ExpectError("not_joined", ref)
			c.Apply(b1, chat("allowed"))
			if s := n.BoardSeq(b2); s > 0 {
				t.Fatalf("forbidden board has seq %d", s)
			}
		})
		t.Run("any board", func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("bob", []string{"*"}, time.Hour)))
			c.JoinFull(b2)
			c.JoinFull(newBoard())
		})
		t.Run("no boards", func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.HelloToken(token(t, jwt.SigningMethodHS256, key, claims("carol", nil, time.Hour)))
			c.Send(msg{"t": "join", "ref": "2", "board": b1})
			c.ExpectError("forbidden", "2")
		})

		refused := func(name, tok string) {
			t.Run(name, func(t *testing.T) {
				c := gatewaytest.Dial(t, n.WS)
				c.Send(msg{"t": "hello", "ref": "h", "token": tok, "user": "alice"})
				c.ExpectError("unauthorized", "h")
				c.ExpectClose(1008)
			})
		}
		refused("wrong key", token(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims("alice", []string{"*"}, time.Hour)))
		refused("expired", token(t, jwt.SigningMethodHS256, key, claims("alice", []string{"*"}, -time.Minute)))
		refused("no exp", token(t, jwt.SigningMethodHS256, key, claims("alice", []string{"*"}, 0)))
		refused("alg none", token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", []string{"*"}, time.Hour)))
		refused("HS512", token(t, jwt.SigningMethodHS512, key, claims("alice", []string{"*"}, time.Hour)))
		refused("no sub", token(t, jwt.SigningMethodHS256, key, claims("", []string{"*"}, time.Hour)))
		refused("sub too long", token(t, jwt.SigningMethodHS256, key, claims(strings.Repeat("s", 65), []string{"*"}, time.Hour)))
		refused("garbage", "not.a.jwt")
		refused("empty", "")
		good := token(t, jwt.SigningMethodHS256, key, claims("alice", []string{"*"}, time.Hour))
		refused("tampered", good[:len(good)-2]+"xx")
		refused("boards not a list", token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{
			"sub": "alice", "boards": "*", "exp": time.Now().Add(time.Hour).Unix()}))

		t.Run("missing token", func(t *testing.T) {
			c := gatewaytest.Dial(t, n.WS)
			c.Send(`{"t":"hello","ref":"h","user":"alice"}`)
			c.ExpectError("unauthorized", "h")
			c.ExpectClose(1008)
		})
	})
}
