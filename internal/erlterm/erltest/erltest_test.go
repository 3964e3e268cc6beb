package erltest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tavernhq/tavern/internal/erlterm"
	"github.com/tavernhq/tavern/internal/erlterm/erltest"
)

// TestCanonMatchesErl pins the canonical form on both sides, so that a
// comparison of the two cannot pass by both being empty or wrong alike.
func TestCanonMatchesErl(t *testing.T) {
	src := `{a, "hé", [1 | x], <<7>>, -1.5, #{k => v, "s" => 2}, 'Q'}. [].`
	const want = `[{a[97],[i104|[i233|[]]],[i1|a[120]],b[7],f13832806255468478464,#{[i115|[]]=>i2,a[107]=>a[118]},a[81]}|[[]|[]]]`
	terms, err := erlterm.Parse("t", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := erltest.Canon(terms); got != want {
		t.Errorf("Canon = %s\nwant    %s", got, want)
	}
	path := filepath.Join(t.TempDir(), "t.config")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.config")
	if err := os.WriteFile(bad, []byte("{a"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := erltest.Consult(t, path, bad)
	if !res[0].OK || res[0].Canon != want {
		t.Errorf("erl: %+v\nwant canon %s", res[0], want)
	}
	if res[1].OK || res[1].Reason == "" {
		t.Errorf("erl accepted a bad file: %+v", res[1])
	}
}
