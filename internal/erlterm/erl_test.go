package erlterm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
	"github.com/tavernhq/tavern/internal/erlterm/erltest"
)

// TestErlAgreesOnTestdata runs a real erl's file:consult/1 on every file
// under testdata (the good, the bad and the golden) and checks that erl
// accepts exactly the files Parse accepts, and reads the same terms.
func TestErlAgreesOnTestdata(t *testing.T) {
	var files []string
	for _, pattern := range []string{"testdata/*.config", "testdata/*.golden", "testdata/bad/*.config"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	for k, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		files[k] = abs
	}
	results := erltest.Consult(t, files...)
	for k, path := range files {
		terms, err := erlterm.ParseFile(path)
		compareWithErl(t, filepath.Base(path), terms, err, results[k], false)
	}
}

// TestErlAgreesOnTableCases does the same for every case of the parse and
// error tables, and checks that erl does accept the inputs Parse rejects
// on purpose (errorCase.stricter).
func TestErlAgreesOnTableCases(t *testing.T) {
	dir := t.TempDir()
	type input struct {
		name     string
		src      string
		stricter bool
	}
	var inputs []input
	for _, tc := range parseCases {
		inputs = append(inputs, input{tc.name, tc.src, false})
	}
	for _, tc := range errorCases {
		inputs = append(inputs, input{tc.name, tc.src, tc.stricter})
	}
	inputs = append(inputs, input{"1001 nested lists",
		strings.Repeat("[", erlterm.MaxDepth+1) + strings.Repeat("]", erlterm.MaxDepth+1) + ".", true})
	files := make([]string, len(inputs))
	for k, in := range inputs {
		files[k] = filepath.Join(dir, fmt.Sprintf("case%03d.config", k))
		if err := os.WriteFile(files[k], []byte(in.src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	results := erltest.Consult(t, files...)
	for k, in := range inputs {
		terms, err := erlterm.Parse("t.config", []byte(in.src))
		compareWithErl(t, in.name, terms, err, results[k], in.stricter)
	}
}

func compareWithErl(t *testing.T, name string, terms []erlterm.Term, err error, erl erltest.Result, stricter bool) {
	t.Helper()
	switch {
	case stricter:
		if err == nil {
			t.Errorf("%s: marked stricter than erl but Parse accepts it", name)
		}
		if !erl.OK {
			t.Errorf("%s: marked stricter than erl but erl rejects it too: %s", name, erl.Reason)
		}
	case err == nil && !erl.OK:
		t.Errorf("%s: Parse accepts it, erl does not: %s", name, erl.Reason)
	case err != nil && erl.OK:
		t.Errorf("%s: erl accepts it, Parse does not: %v", name, err)
	case err == nil:
		if got := erltest.Canon(terms); got != erl.Canon {
			t.Errorf("%s: erl reads other terms\nParse: %s\nerl:   %s", name, got, erl.Canon)
		}
	}
}
