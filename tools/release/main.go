// Command release writes a release's sys.config: the given sys.config with
// a freshly generated node identity, a node name tavern-<8 random hex>@HOST
// and a random cookie of 256 bits, as `make release` does before a build
// is pushed. The file is written whole (every key, with its documentation,
// by sysconfig.Render), mode 0600, atomically, with allow_insecure_config
// off whatever the source says (the development sys.config sets it). The environment overrides
// (TAVERN_NODE, TAVERN_COOKIE, TAVERN_DSN) of the machine that builds the
// release are not applied. It prints the node name, never the cookie.
//
//	go run ./tools/release -from ./sys.config -out rel/sys.config -host db1.internal
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "./sys.config", "the sys.config to start from")
	out := fs.String("out", "rel/sys.config", "the release's sys.config to write")
	host := fs.String("host", "", "the host part of the node name (required)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *host == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	name, err := Write(*from, *out, *host)
	if err != nil {
		fmt.Fprintf(stderr, "release: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: node %s, a new random cookie, mode 0600\n", *out, name)
	return 0
}

// Identity returns a fresh node name, tavern-<8 hex>@host, and a cookie
// of 256 random bits (64 hex characters), both from crypto/rand.
func Identity(host string) (name string, cookie sysconfig.Secret, err error) {
	var id [4]byte
	var c [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", err
	}
	if _, err := rand.Read(c[:]); err != nil {
		return "", "", err
	}
	return "tavern-" + hex.EncodeToString(id[:]) + "@" + host, sysconfig.Secret(hex.EncodeToString(c[:])), nil
}

// Write reads the sys.config at from, gives it a fresh Identity on host
// and writes it to out (mode 0600, replacing any file there); it returns
// the node name. The result is checked to parse back to the same
// identity before it replaces out.
func Write(from, out, host string) (string, error) {
	src, err := os.ReadFile(from)
	if err != nil {
		return "", err
	}
	cfg, err := sysconfig.Parse(from, src, nil)
	if err != nil {
		return "", err
	}
	name, cookie, err := Identity(host)
	if err != nil {
		return "", fmt.Errorf("random identity: %w", err)
	}
	cfg.Node.Name, cfg.Node.Cookie = name, cookie
	// The file is written 0600: a release never needs the development
	// config's exemption from the mode check, and must not carry it.
	cfg.Node.AllowInsecureConfig = false
	text := sysconfig.Render(cfg)
	back, err := sysconfig.Parse(out, []byte(text), nil)
	if err != nil {
		return "", fmt.Errorf("the release config does not parse back (host %q?): %w", host, err)
	}
	if back.Node.Name != name || back.Node.Cookie != cookie {
		return "", errors.New("the release config does not read back to its identity")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".sys.config-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", err
	}
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return name, nil
}
