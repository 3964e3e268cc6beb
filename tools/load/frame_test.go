package load

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// seeds are real server frames: what Tavern's encoder and the baseline
// send (testdata/frames).
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/frames/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed frames: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func TestParseFrameSeeds(t *testing.T) {
	for name, b := range seeds(t) {
		f, err := ParseFrame(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if f.T == "" {
			t.Errorf("%s: no type", name)
		}
	}
	f, _ := ParseFrame(seeds(t)["ev_chat.json"])
	if f.Board != "lg-b0" || f.Seq != 58 || f.User != "lg-u1" || f.ID != "lg-u1-3" {
		t.Fatalf("ev decoded as %+v", f)
	}
	p, ns, ok := ParseStamp(f.Op)
	if !ok || p != 3 || ns != 1764225000123456789 {
		t.Fatalf("stamp: %d %d %v", p, ns, ok)
	}
	if _, _, ok := ParseStamp(seeds(t)["ev_roll.json"]); ok {
		t.Fatal("a stamp found in an op without one")
	}
}

func TestParseFrameRefuses(t *testing.T) {
	for _, b := range []string{
		``, `null`, `[]`, `{}`, `{"t":""}`, `{"t":1}`, `"ev"`,
		`{"t":"ev","board":"b","seq":0,"user":"u","id":"i","op":{}}`,
		`{"t":"ev","board":"b","seq":1,"user":"u","id":"i"}`,
		`{"t":"ev","board":"b","seq":1,"user":"u","id":"i","op":[]}`,
		`{"t":"ev","seq":1,"user":"u","id":"i","op":{}}`,
		`{"t":"ack","board":"b","id":"i","seq":0}`,
		`{"t":"ack","board":"b","seq":3}`,
		`{"t":"joined","board":"b","seq":-1}`,
		`{"t":"joined","board":"b","seq":1,"snapshot":[]}`,
		`{"t":"error","msg":"x"}`,
		`{"t":"ev","board":"b","seq":1.5,"user":"u","id":"i","op":{}}`,
	} {
		if f, err := ParseFrame([]byte(b)); err == nil {
			t.Errorf("%s accepted as %+v", b, f)
		}
	}
}

func TestStampRoundTrip(t *testing.T) {
	for _, c := range []struct {
		phase int
		ns    int64
	}{{0, 0}, {1, 1}, {7, 1764225000123456789}, {1 << 20, 1<<62 + 5}} {
		op, _ := json.Marshal(map[string]any{"kind": "chat", "text": string(AppendStamp(nil, c.phase, c.ns))})
		p, ns, ok := ParseStamp(op)
		if !ok || p != c.phase || ns != c.ns {
			t.Fatalf("stamp %v: got %d %d %v", c, p, ns, ok)
		}
	}
}

// FuzzParseFrame: no input makes the parser panic, and a frame it
// accepts keeps its meaning when encoded again and parsed back.
func FuzzParseFrame(f *testing.F) {
	for _, b := range seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFrame(b)
		_, _, _ = ParseStamp(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(fr)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", fr, err)
		}
		fr2, err := ParseFrame(again)
		if err != nil {
			t.Fatalf("re-encoded frame refused: %s: %v", again, err)
		}
		if fr2.T != fr.T || fr2.Board != fr.Board || fr2.Seq != fr.Seq || fr2.ID != fr.ID || fr2.User != fr.User || fr2.Code != fr.Code {
			t.Fatalf("round trip changed %+v into %+v", fr, fr2)
		}
		if fr.T == "ev" {
			p1, n1, ok1 := ParseStamp(fr.Op)
			p2, n2, ok2 := ParseStamp(fr2.Op)
			if p1 != p2 || n1 != n2 || ok1 != ok2 {
				t.Fatalf("stamp changed in a round trip")
			}
		}
	})
}
