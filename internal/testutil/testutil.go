// Package testutil holds the harnesses Tavern's tests share: fresh
// PostgreSQL databases, polling with a deadline, free ports. It is imported
// only from _test.go files and test binaries.
package testutil

import (
	"fmt"
	"net"
	"os"
	"testing"
	"time"
)

// Eventually polls cond every few milliseconds until it returns true, and
// fails the test if it has not within d. Tests wait on conditions, never
// on sleeps.
func Eventually(t testing.TB, d time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, fmt.Sprintf(format, args...))
		}
		time.Sleep(wait)
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// InCI reports whether the tests run under CI, where nothing may skip for
// want of a service.
func InCI() bool { return os.Getenv("CI") != "" }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
