package gateway_test

import (
	"testing"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
)

func TestSmoke(t *testing.T) {
	n := gatewaytest.Start(t, gatewaytest.Options{})
	c := gatewaytest.Dial(t, n.WS)
	w := c.Hello("alice")
	t.Logf("welcome %v", w)
	j, users := c.JoinFull("cave-1")
	t.Logf("joined %v users %v", j, users)
	ack := c.Apply("cave-1", map[string]any{"kind": "put", "entities": []any{map[string]any{"id": "e1", "asset": "orc", "pos": []any{1, 2, 3}}}})
	t.Logf("ack %v", ack)
	ev := c.Expect("ev")
	t.Logf("ev %v", ev)
}
