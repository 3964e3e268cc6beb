package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A bad sys.config stops the node before anything starts: exit 2, every
// problem on stderr as file:line:col, the cookie nowhere.
func TestBadConfigListsEveryErrorAndExits2(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sys.config")
	bad := `[{node, [{name, "no-at-sign"}, {cookie, "s3cret-cookie"}, {dist_listen, "nope"}]},
 {gateway, [{listen, "127.0.0.1:8080"}, {max_frame, big}, {colour, blue}]},
 {store, [{dsn, "mysql://x"}]},
 {weather, []}].
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"-config", path}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{
		path + ":1:17: node.name",
		path + ":1:73: node.dist_listen",
		path + ":2:53: gateway.max_frame",
		path + ":2:60: gateway.colour",
		path + ":3:17: store.dsn",
		path + ":4:3: weather",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stdout.String(), "s3cret-cookie") {
		t.Fatal("the cookie was printed")
	}
	if stdout.Len() != 0 {
		t.Fatalf("something started: %s", stdout.String())
	}
}

func TestMissingConfigExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-config", filepath.Join(t.TempDir(), "none.config")}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(stderr.String(), "none.config") {
		t.Fatalf("stderr does not name the file: %s", stderr.String())
	}
}
