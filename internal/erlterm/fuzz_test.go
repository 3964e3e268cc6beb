package erlterm_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// survives Format and Parse again unchanged, both term by term and as a
// whole file.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.config", "testdata/*.golden", "testdata/bad/*.config"} {
		files, _ := filepath.Glob(pattern)
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.src))
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		terms, err := erlterm.Parse("fuzz", src)
		if err != nil {
			if terms != nil {
				t.Fatalf("terms with an error: %v", err)
			}
			return
		}
		for _, term := range terms {
			checkTree(t, term)
			text := erlterm.Format(term)
			again, err := erlterm.Parse("format", []byte(text+"."))
			if err != nil {
				t.Fatalf("Format output does not parse: %v\nsource: %q\ntext: %s", err, src, text)
			}
			if len(again) != 1 || !erlterm.Equal(again[0], term) {
				t.Fatalf("round trip changed the term\nsource: %q\ntext: %s\nagain: %v", src, text, again)
			}
		}
		again, err := erlterm.Parse("file", []byte(formatFile(terms)))
		if err != nil || len(again) != len(terms) {
			t.Fatalf("formatted file does not parse to %d terms: %v", len(terms), err)
		}
	})
}

// checkTree checks the invariants of a parsed term: no nil elements,
// valid positions, and normalised list tails.
func checkTree(t *testing.T, term erlterm.Term) {
	if term == nil {
		t.Fatal("nil term in a parsed tree")
	}
	if !term.Pos().IsValid() {
		t.Fatalf("term %v has no position", term)
	}
	switch v := term.(type) {
	case erlterm.Tuple:
		for _, e := range v.Elems {
			checkTree(t, e)
		}
	case erlterm.List:
		for _, e := range v.Elems {
			checkTree(t, e)
		}
		if v.Tail != nil {
			switch v.Tail.(type) {
			case erlterm.List, erlterm.String:
				t.Fatalf("list tail not normalised: %v", v)
			}
			if len(v.Elems) == 0 {
				t.Fatalf("improper list without elements: %v", v)
			}
			checkTree(t, v.Tail)
		}
	case erlterm.Map:
		for _, kv := range v.Pairs {
			checkTree(t, kv.Key)
			checkTree(t, kv.Value)
		}
	case erlterm.Float:
		if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
			t.Fatalf("non-finite float %v", v.Value)
		}
	}
}
