package wire

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary messages to Decode, seeded from
// testdata/requests. It checks that Decode never panics, that what it
// accepts is valid, that its errors are well formed, that it agrees with
// the map-based reference decoder, and that every encoder turns arbitrary
// strings into valid JSON that decodes back to them.
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob("testdata/requests/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, e := Decode(data)
		if (req == nil) == (e == nil) {
			t.Fatalf("Decode(%q) = %v, %v: want exactly one", data, req, e)
		}
		if e != nil {
			if !KnownCode(e.Code) || e.Code != CodeBadRequest || e.Msg == "" {
				t.Fatalf("Decode(%q): bad error %+v", data, e)
			}
			if e.HasRef && len(e.Ref) > MaxRefLen {
				t.Fatalf("Decode(%q): ref too long %+v", data, e)
			}
			if !json.Valid(ErrorMsg(e)) {
				t.Fatalf("ErrorMsg(%+v) invalid JSON", e)
			}
		} else {
			checkRequest(t, data, req)
		}

		rreq, rerr := decodeReference(data)
		if !reflect.DeepEqual(e, rerr) {
			t.Fatalf("Decode(%q) error %+v, reference %+v", data, e, rerr)
		}
		if req != nil && !reflect.DeepEqual(req, rreq) {
			if rreq == nil || !sameOp(req, rreq) {
				t.Fatalf("Decode(%q)\n = %+v\n reference %+v", data, req, rreq)
			}
		}

		checkEncoders(t, string(data))
	})
}

// sameOp reports whether a and b differ only in the whitespace of Op.
func sameOp(a, b *Request) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a.Op) != nil || json.Compact(&cb, b.Op) != nil || !bytes.Equal(ca.Bytes(), cb.Bytes()) {
		return false
	}
	x, y := *a, *b
	x.Op, y.Op = nil, nil
	return reflect.DeepEqual(x, y)
}

func checkRequest(t *testing.T, data []byte, req *Request) {
	t.Helper()
	if req.HasRef && len(req.Ref) > MaxRefLen || !req.HasRef && req.Ref != "" {
		t.Fatalf("Decode(%q): bad ref %+v", data, req)
	}
	switch req.Type {
	case TypeHello, TypePing:
		if req.Board != "" || req.ID != "" || req.Op != nil || req.HasSince {
			t.Fatalf("Decode(%q): stray fields %+v", data, req)
		}
	case TypeJoin, TypeLeave, TypeOp:
		if !ValidID(req.Board) {
			t.Fatalf("Decode(%q): invalid board %+v", data, req)
		}
		if req.Since < 0 || !req.HasSince && req.Since != 0 || req.HasSince && req.Type != TypeJoin {
			t.Fatalf("Decode(%q): bad since %+v", data, req)
		}
		if req.Type == TypeOp {
			if len(req.ID) == 0 || len(req.ID) > MaxOpIDLen {
				t.Fatalf("Decode(%q): bad id %+v", data, req)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(req.Op, &m); err != nil || m == nil {
				t.Fatalf("Decode(%q): op not an object %+v", data, req)
			}
		} else if req.ID != "" || req.Op != nil {
			t.Fatalf("Decode(%q): stray fields %+v", data, req)
		}
	default:
		t.Fatalf("Decode(%q): unknown type %+v", data, req)
	}
}

// checkEncoders runs every encoder with s in every string position and
// checks the output is valid JSON whose strings decode as encoding/json
// would have written them.
func checkEncoders(t *testing.T, s string) {
	t.Helper()
	var want string
	if err := json.Unmarshal(marshalString(s), &want); err != nil {
		t.Fatal(err)
	}
	if got := appendString(nil, s); !bytes.Equal(got, marshalString(s)) {
		t.Fatalf("appendString(%q) = %s, encoding/json %s", s, got, marshalString(s))
	}
	r := Ref{S: s, OK: true}
	msgs := [][]byte{
		Welcome(r, s, s, Limits{MaxFrame: len(s), OpsPerSec: float64(len(s)) / 3, OpsBurst: 1}),
		Joined(r, s, int64(len(s)), json.RawMessage(`{"entities":[]}`)),
		Joined(Ref{}, s, -1, nil),
		Ack(r, s, s, 1, len(s)%2 == 0),
		Event(s, 1, s, s, json.RawMessage(`{}`), json.RawMessage(`{"rolls":[1],"total":1}`)),
		PresenceFull(s, []string{s, s, "", s + "x"}),
		PresenceDelta(s, []string{s}, []string{s, ""}),
		Left(r, s),
		Pong(r),
		Notice(s),
		ErrorMsg(&Error{Code: s, Msg: s, Ref: s, HasRef: true}),
	}
	for _, m := range msgs {
		var v map[string]any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatalf("encoder output %q invalid: %v", m, err)
		}
		if v["t"] == "pong" {
			if v["ref"] != want {
				t.Fatalf("pong ref %q, want %q", v["ref"], want)
			}
		}
		if v["t"] == "notice" && v["text"] != want {
			t.Fatalf("notice text %q, want %q", v["text"], want)
		}
	}
}
