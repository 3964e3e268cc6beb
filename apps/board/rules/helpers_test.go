package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func mustDecode(t testing.TB, s string) *Op {
	t.Helper()
	op, err := Decode([]byte(s), DefaultLimits())
	if err != nil {
		t.Fatalf("Decode(%s): %v", trunc(s), err)
	}
	return op
}

func mustApply(t testing.TB, st *State, s string) json.RawMessage {
	t.Helper()
	res, err := st.Apply(mustDecode(t, s), newRand())
	if err != nil {
		t.Fatalf("Apply(%s): %v", trunc(s), err)
	}
	return res
}

func trunc(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// code returns the code of an *Error, "" for nil, and fails on other errors.
func code(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e.Code
}

// putOf returns a put of n entities with ids prefix0..prefix(n-1).
func putOf(prefix string, n int) string {
	var b strings.Builder
	b.WriteString(`{"kind":"put","entities":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%s%d","asset":"a","pos":[%d,0,0]}`, prefix, i, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// propsOfSize returns a props object whose compact JSON is exactly n bytes
// (n >= 8): {"p":"xxx"}.
func propsOfSize(n int) string {
	return `{"p":"` + strings.Repeat("x", n-8) + `"}`
}

// populated returns a small board used by several tests.
func populated(t testing.TB) *State {
	t.Helper()
	st := NewState(DefaultLimits())
	mustApply(t, st, `{"kind":"put","entities":[
		{"id":"e1","asset":"orc","pos":[0,0,0]},
		{"id":"e2","asset":"chest","pos":[1,0,2],"rot":180,"props":{"hp":12,"name":"Grok","tags":["loot"]}},
		{"id":"e3","asset":"door","pos":[5,0,5],"rot":90,"props":{"open":false}}]}`)
	return st
}
