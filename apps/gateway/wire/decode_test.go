package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	ref := func(s string) Ref { return Ref{S: s, OK: true} }
	type errWant struct {
		msg string
		ref Ref
	}
	tests := []struct {
		name string
		in   string
		want *Request // nil when an error is expected
		err  errWant  // code is always bad_request
	}{
		// hello
		{"hello user", `{"t":"hello","ref":"1","user":"alice"}`,
			&Request{Type: "hello", Ref: "1", HasRef: true, User: "alice"}, errWant{}},
		{"hello token", `{"t":"hello","ref":"1","token":"a.b.c"}`,
			&Request{Type: "hello", Ref: "1", HasRef: true, Token: "a.b.c"}, errWant{}},
		{"hello both", `{"t":"hello","token":"tok","user":"u"}`,
			&Request{Type: "hello", Token: "tok", User: "u"}, errWant{}},
		{"hello nothing", `{"t":"hello"}`, &Request{Type: "hello"}, errWant{}},
		{"hello ill-typed fields are missing", `{"t":"hello","ref":"1","token":42,"user":{"x":1}}`,
			&Request{Type: "hello", Ref: "1", HasRef: true}, errWant{}},
		{"hello null user", `{"t":"hello","user":null}`, &Request{Type: "hello"}, errWant{}},
		{"hello ignores board", `{"t":"hello","user":"a","board":7}`, &Request{Type: "hello", User: "a"}, errWant{}},

		// ref rules
		{"empty ref is a ref", `{"t":"ping","ref":""}`, &Request{Type: "ping", Ref: "", HasRef: true}, errWant{}},
		{"ref 64 bytes", `{"t":"ping","ref":"` + long("r", 64) + `"}`,
			&Request{Type: "ping", Ref: long("r", 64), HasRef: true}, errWant{}},
		{"ref 64 bytes multibyte", `{"t":"ping","ref":"` + long("é", 32) + `"}`,
			&Request{Type: "ping", Ref: long("é", 32), HasRef: true}, errWant{}},
		{"ref 65 bytes", `{"t":"ping","ref":"` + long("r", 65) + `"}`,
			nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"ref 66 bytes multibyte", `{"t":"ping","ref":"` + long("é", 33) + `"}`,
			nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"ref length after unescape", `{"t":"ping","ref":"` + long(`\u0041`, 64) + `"}`,
			&Request{Type: "ping", Ref: long("A", 64), HasRef: true}, errWant{}},
		{"ref number", `{"t":"ping","ref":5}`, nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"ref null", `{"t":"ping","ref":null}`, nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"bad ref wins over bad t", `{"t":1,"ref":[]}`, nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"bad ref wins over bad board", `{"t":"join","ref":true,"board":""}`, nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"ref with escapes", `{"t":"ping","ref":"a\"b\\c\n"}`, &Request{Type: "ping", Ref: "a\"b\\c\n", HasRef: true}, errWant{}},

		// envelope
		{"not json", `{"t":"ping",`, nil, errWant{"message is not valid JSON", Ref{}}},
		{"empty", ``, nil, errWant{"message is not valid JSON", Ref{}}},
		{"trailing garbage", `{"t":"ping"} {}`, nil, errWant{"message is not valid JSON", Ref{}}},
		{"array", `["t","ping"]`, nil, errWant{"message is not a JSON object", Ref{}}},
		{"null", `null`, nil, errWant{"message is not a JSON object", Ref{}}},
		{"string", `"ping"`, nil, errWant{"message is not a JSON object", Ref{}}},
		{"number", ` 12 `, nil, errWant{"message is not a JSON object", Ref{}}},
		{"empty object", `{}`, nil, errWant{"t is required", Ref{}}},
		{"t missing keeps ref", `{"ref":"7","board":"b"}`, nil, errWant{"t is required", ref("7")}},
		{"t number", `{"t":1,"ref":"7"}`, nil, errWant{"t must be a string", ref("7")}},
		{"t null", `{"t":null}`, nil, errWant{"t must be a string", Ref{}}},
		{"t unknown", `{"t":"shout","ref":"7"}`, nil, errWant{`unknown message type "shout"`, ref("7")}},
		{"t is case sensitive", `{"t":"PING"}`, nil, errWant{`unknown message type "PING"`, Ref{}}},
		{"key T is not t", `{"T":"ping"}`, nil, errWant{"t is required", Ref{}}},
		{"t unknown long is cut", `{"t":"` + long("x", 40) + `"}`, nil, errWant{`unknown message type "` + long("x", 32) + `"...`, Ref{}}},
		{"whitespace", " \n\t{ \"t\" : \"ping\" , \"ref\" : \"5\" }\r\n", &Request{Type: "ping", Ref: "5", HasRef: true}, errWant{}},
		{"unknown fields ignored", `{"x":{"t":"join","a":[1,"}",{"b":null}]},"t":"ping","y":-1.5e3,"z":[true,false]}`,
			&Request{Type: "ping"}, errWant{}},
		{"duplicate keys last wins", `{"t":"join","t":"ping","ref":1,"ref":"8"}`, &Request{Type: "ping", Ref: "8", HasRef: true}, errWant{}},
		{"duplicate key last wins bad", `{"t":"ping","ref":"8","ref":1}`, nil, errWant{"ref must be a string of at most 64 bytes", Ref{}}},
		{"escaped keys", `{"\u0074":"\u006aoin","board":"b\u002d1"}`, &Request{Type: "join", Board: "b-1"}, errWant{}},

		// join
		{"join", `{"t":"join","ref":"2","board":"cave-1"}`, &Request{Type: "join", Ref: "2", HasRef: true, Board: "cave-1"}, errWant{}},
		{"join since", `{"t":"join","board":"cave-1","since":41}`, &Request{Type: "join", Board: "cave-1", Since: 41, HasSince: true}, errWant{}},
		{"join since 0", `{"t":"join","board":"b","since":0}`, &Request{Type: "join", Board: "b", HasSince: true}, errWant{}},
		{"join since -0", `{"t":"join","board":"b","since":-0}`, &Request{Type: "join", Board: "b", HasSince: true}, errWant{}},
		{"join since max", `{"t":"join","board":"b","since":9223372036854775807}`,
			&Request{Type: "join", Board: "b", Since: 1<<63 - 1, HasSince: true}, errWant{}},
		{"join since overflow", `{"t":"join","ref":"2","board":"b","since":9223372036854775808}`, nil, errWant{"join: since must be a non-negative integer", ref("2")}},
		{"join since negative", `{"t":"join","ref":"2","board":"b","since":-1}`, nil, errWant{"join: since must be a non-negative integer", ref("2")}},
		{"join since fraction", `{"t":"join","board":"b","since":41.0}`, nil, errWant{"join: since must be a non-negative integer", Ref{}}},
		{"join since exponent", `{"t":"join","board":"b","since":1e3}`, nil, errWant{"join: since must be a non-negative integer", Ref{}}},
		{"join since string", `{"t":"join","board":"b","since":"41"}`, nil, errWant{"join: since must be a non-negative integer", Ref{}}},
		{"join since null", `{"t":"join","board":"b","since":null}`, nil, errWant{"join: since must be a non-negative integer", Ref{}}},
		{"join no board", `{"t":"join","ref":"2"}`, nil, errWant{"join: board is required", ref("2")}},
		{"join board number", `{"t":"join","ref":"2","board":1}`, nil, errWant{"join: board must be a string", ref("2")}},
		{"join board null", `{"t":"join","board":null}`, nil, errWant{"join: board must be a string", Ref{}}},
		{"join board empty", `{"t":"join","board":""}`, nil, errWant{"join: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"join board 64", `{"t":"join","board":"` + long("B", 64) + `"}`, &Request{Type: "join", Board: long("B", 64)}, errWant{}},
		{"join board 65", `{"t":"join","board":"` + long("B", 65) + `"}`, nil, errWant{"join: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"join board space", `{"t":"join","board":"cave 1"}`, nil, errWant{"join: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"join board unicode", `{"t":"join","board":"cavé"}`, nil, errWant{"join: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"join board path", `{"t":"join","board":"../x"}`, nil, errWant{"join: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"board checked before since", `{"t":"join","board":1,"since":-1}`, nil, errWant{"join: board must be a string", Ref{}}},
		{"join ignores id and op", `{"t":"join","board":"b","id":5,"op":[]}`, &Request{Type: "join", Board: "b"}, errWant{}},

		// leave
		{"leave", `{"t":"leave","ref":"4","board":"cave-1"}`, &Request{Type: "leave", Ref: "4", HasRef: true, Board: "cave-1"}, errWant{}},
		{"leave no board", `{"t":"leave","ref":"4"}`, nil, errWant{"leave: board is required", ref("4")}},
		{"leave bad board", `{"t":"leave","board":"a.b"}`, nil, errWant{"leave: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"leave ignores since", `{"t":"leave","board":"b","since":-5}`, &Request{Type: "leave", Board: "b"}, errWant{}},

		// ping
		{"ping", `{"t":"ping","ref":"5"}`, &Request{Type: "ping", Ref: "5", HasRef: true}, errWant{}},
		{"ping no ref", `{"t":"ping"}`, &Request{Type: "ping"}, errWant{}},

		// op
		{"op", `{"t":"op","ref":"3","board":"cave-1","id":"alice-0017","op":{"kind":"move","entity":"e9","pos":[3,0,7]}}`,
			&Request{Type: "op", Ref: "3", HasRef: true, Board: "cave-1", ID: "alice-0017",
				Op: json.RawMessage(`{"kind":"move","entity":"e9","pos":[3,0,7]}`)}, errWant{}},
		{"op with spaces keeps raw", `{"t":"op","board":"b","id":"x","op": { "kind" : "chat" , "text":"}{" } }`,
			&Request{Type: "op", Board: "b", ID: "x", Op: json.RawMessage(`{ "kind" : "chat" , "text":"}{" }`)}, errWant{}},
		{"op empty object", `{"t":"op","board":"b","id":"x","op":{}}`, &Request{Type: "op", Board: "b", ID: "x", Op: json.RawMessage(`{}`)}, errWant{}},
		{"op id any bytes", `{"t":"op","board":"b","id":"é \"x\"","op":{}}`, &Request{Type: "op", Board: "b", ID: "é \"x\"", Op: json.RawMessage(`{}`)}, errWant{}},
		{"op id 64 bytes", `{"t":"op","board":"b","id":"` + long("é", 32) + `","op":{}}`,
			&Request{Type: "op", Board: "b", ID: long("é", 32), Op: json.RawMessage(`{}`)}, errWant{}},
		{"op id 65 bytes", `{"t":"op","ref":"3","board":"b","id":"` + long("i", 65) + `","op":{}}`, nil, errWant{"op: id must be 1 to 64 bytes long", ref("3")}},
		{"op id empty", `{"t":"op","board":"b","id":"","op":{}}`, nil, errWant{"op: id must be 1 to 64 bytes long", Ref{}}},
		{"op id missing", `{"t":"op","ref":"3","board":"b","op":{}}`, nil, errWant{"op: id is required", ref("3")}},
		{"op id number", `{"t":"op","board":"b","id":17,"op":{}}`, nil, errWant{"op: id must be a string", Ref{}}},
		{"op missing", `{"t":"op","ref":"3","board":"b","id":"x"}`, nil, errWant{"op: op is required", ref("3")}},
		{"op array", `{"t":"op","ref":"3","board":"b","id":"x","op":[1]}`, nil, errWant{"op: op must be an object", ref("3")}},
		{"op string", `{"t":"op","board":"b","id":"x","op":"{}"}`, nil, errWant{"op: op must be an object", Ref{}}},
		{"op null", `{"t":"op","board":"b","id":"x","op":null}`, nil, errWant{"op: op must be an object", Ref{}}},
		{"op no board", `{"t":"op","id":"x","op":{}}`, nil, errWant{"op: board is required", Ref{}}},
		{"op bad board", `{"t":"op","board":"","id":"x","op":{}}`, nil, errWant{"op: board must match [A-Za-z0-9_-]{1,64}", Ref{}}},
		{"op board before id before op", `{"t":"op","board":true,"id":1,"op":1}`, nil, errWant{"op: board must be a string", Ref{}}},
		{"op id before op", `{"t":"op","board":"b","id":1,"op":1}`, nil, errWant{"op: id must be a string", Ref{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Decode(%s) error %v, want %+v", tt.in, err, tt.want)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Decode(%s)\n got  %+v\n want %+v", tt.in, got, tt.want)
				}
				return
			}
			if got != nil || err == nil {
				t.Fatalf("Decode(%s) = %+v, %v; want an error", tt.in, got, err)
			}
			want := &Error{Code: CodeBadRequest, Msg: tt.err.msg, Ref: tt.err.ref.S, HasRef: tt.err.ref.OK}
			if *err != *want {
				t.Fatalf("Decode(%s) error\n got  %+v\n want %+v", tt.in, err, want)
			}
			// The reference decoder agrees.
			rreq, rerr := decodeReference([]byte(tt.in))
			if rreq != nil || rerr == nil || *rerr != *want {
				t.Fatalf("reference decoder disagrees: %+v %+v", rreq, rerr)
			}
		})
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	in := []byte(`{"t":"op","ref":"r","board":"b","id":"x","op":{"kind":"chat","text":"hi"}}`)
	req, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'Z'
	}
	if req.Ref != "r" || req.Board != "b" || req.ID != "x" || string(req.Op) != `{"kind":"chat","text":"hi"}` {
		t.Fatalf("request changed with its input: %+v", req)
	}
}

func TestDecodeInvalidUTF8(t *testing.T) {
	// The gateway closes with 1007 before decoding, but Decode must still
	// be safe: invalid bytes become U+FFFD as with encoding/json.
	req, err := Decode([]byte("{\"t\":\"hello\",\"user\":\"a\xffb\"}"))
	if err != nil {
		t.Fatal(err)
	}
	if req.User != "a\uFFFDb" {
		t.Fatalf("user %q", req.User)
	}
}

func TestErrorIsError(t *testing.T) {
	var err error = &Error{Code: CodeBadOp, Msg: "move: entity e9 not found"}
	if err.Error() != "bad_op: move: entity e9 not found" {
		t.Fatal(err.Error())
	}
	req := &Request{Type: TypeOp, Ref: "3", HasRef: true}
	e := req.Errorf(CodeNotFound, "move: entity %s not found", "e9")
	if *e != (Error{Code: CodeNotFound, Msg: "move: entity e9 not found", Ref: "3", HasRef: true}) {
		t.Fatalf("%+v", e)
	}
	for _, c := range []string{CodeBadRequest, CodeUnauthorized, CodeForbidden, CodeNotJoined, CodeNotFound,
		CodeBadOp, CodeRateLimited, CodeUnavailable, CodeInternal} {
		if !KnownCode(c) {
			t.Fatal(c)
		}
	}
	if KnownCode("nope") || KnownCode("") {
		t.Fatal("unknown code known")
	}
}

func TestValidID(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "cave-1": true, "A_z-09": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "é": false, "a.b": false, "a/b": false, "\x00": false,
	} {
		if ValidID(s) != want || validIDBytes([]byte(s)) != want {
			t.Errorf("ValidID(%q) != %v", s, want)
		}
	}
}

// decodeReference is a straightforward decoder built on encoding/json
// maps, implementing the rules of Decode's doc independently. The fuzz test
// checks that Decode agrees with it on every input.
func decodeReference(data []byte) (*Request, *Error) {
	bad := func(ref Ref, msg string) (*Request, *Error) {
		return nil, NewError(ref, CodeBadRequest, msg)
	}
	if !json.Valid(data) {
		return bad(Ref{}, "message is not valid JSON")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return bad(Ref{}, "message is not a JSON object")
	}
	str := func(raw json.RawMessage) (string, bool) {
		var s *string
		if raw == nil || json.Unmarshal(raw, &s) != nil || s == nil {
			return "", false
		}
		return *s, true
	}
	var ref Ref
	if raw, ok := m["ref"]; ok {
		s, ok := str(raw)
		if !ok || len(s) > 64 {
			return bad(Ref{}, "ref must be a string of at most 64 bytes")
		}
		ref = Ref{S: s, OK: true}
	}
	rawT, ok := m["t"]
	if !ok {
		return bad(ref, "t is required")
	}
	typ, ok := str(rawT)
	if !ok {
		return bad(ref, "t must be a string")
	}
	req := &Request{Type: typ, Ref: ref.S, HasRef: ref.OK}
	board := func() *Error {
		raw, ok := m["board"]
		if !ok {
			return NewError(ref, CodeBadRequest, typ+": board is required")
		}
		s, ok := str(raw)
		if !ok {
			return NewError(ref, CodeBadRequest, typ+": board must be a string")
		}
		if !ValidID(s) {
			return NewError(ref, CodeBadRequest, typ+": board must match [A-Za-z0-9_-]{1,64}")
		}
		req.Board = s
		return nil
	}
	switch typ {
	case "hello":
		req.Token, _ = str(m["token"])
		req.User, _ = str(m["user"])
	case "ping":
	case "leave":
		if e := board(); e != nil {
			return nil, e
		}
	case "join":
		if e := board(); e != nil {
			return nil, e
		}
		if raw, ok := m["since"]; ok {
			d := json.NewDecoder(strings.NewReader(string(raw)))
			d.UseNumber()
			var v any
			if d.Decode(&v) != nil {
				return bad(ref, "join: since must be a non-negative integer")
			}
			n, isNum := v.(json.Number)
			i, err := n.Int64()
			if !isNum || strings.ContainsAny(string(n), ".eE") || err != nil || i < 0 {
				return bad(ref, "join: since must be a non-negative integer")
			}
			req.Since, req.HasSince = i, true
		}
	case "op":
		if e := board(); e != nil {
			return nil, e
		}
		raw, ok := m["id"]
		if !ok {
			return bad(ref, "op: id is required")
		}
		id, ok := str(raw)
		if !ok {
			return bad(ref, "op: id must be a string")
		}
		if len(id) < 1 || len(id) > 64 {
			return bad(ref, "op: id must be 1 to 64 bytes long")
		}
		req.ID = id
		raw, ok = m["op"]
		if !ok {
			return bad(ref, "op: op is required")
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return bad(ref, "op: op must be an object")
		}
		req.Op = raw
	default:
		return nil, NewError(ref, CodeBadRequest, "unknown message type "+quoteShort([]byte(typ)))
	}
	return req, nil
}

var benchOp = []byte(`{"t":"op","ref":"3","board":"cave-1","id":"alice-0017","op":{"kind":"move","entity":"e9","pos":[3,0,7]}}`)

func BenchmarkDecodeOp(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOp)))
	for b.Loop() {
		if _, err := Decode(benchOp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeOpReference measures the map-based reference decoder, for
// comparison with BenchmarkDecodeOp.
func BenchmarkDecodeOpReference(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchOp)))
	for b.Loop() {
		if _, err := decodeReference(benchOp); err != nil {
			b.Fatal(err)
		}
	}
}
