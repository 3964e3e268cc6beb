package erlterm_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// TestGolden parses each testdata/*.config, a realistic or exhaustive file
// that must parse, and compares its Format output (each term followed by
// ".\n") with testdata/*.golden. The golden file is itself Erlang term text
// and must parse back to the same terms.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.config")
	if len(files) < 4 {
		t.Fatalf("want at least 4 testdata/*.config files, found %d", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			terms, err := erlterm.ParseFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := formatFile(terms)
			compareGolden(t, strings.TrimSuffix(path, ".config")+".golden", got)
			again, err := erlterm.Parse("golden", []byte(got))
			if err != nil {
				t.Fatalf("golden output does not parse: %v", err)
			}
			if len(again) != len(terms) {
				t.Fatalf("golden output has %d terms, want %d", len(again), len(terms))
			}
			for k := range terms {
				if !erlterm.Equal(again[k], terms[k]) {
					t.Errorf("term %d changed through Format:\n%s\n%s", k, erlterm.Format(again[k]), erlterm.Format(terms[k]))
				}
			}
		})
	}
}

// TestGoldenErrors parses each testdata/bad/*.config, which must fail,
// and compares the error list with testdata/bad/*.golden.
func TestGoldenErrors(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.config")
	if len(files) == 0 {
		t.Fatal("no testdata/bad/*.config files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			terms, err := erlterm.ParseFile(path)
			if err == nil {
				t.Fatalf("parsed without error: %v", terms)
			}
			compareGolden(t, strings.TrimSuffix(path, ".config")+".golden", err.Error()+"\n")
		})
	}
}

func formatFile(terms []erlterm.Term) string {
	var b strings.Builder
	for _, term := range terms {
		b.WriteString(erlterm.Format(term))
		b.WriteString(".\n")
	}
	return b.String()
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run go test -update and review the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
