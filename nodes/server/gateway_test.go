package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tavernhq/tavern/apps/gateway/gatewaytest"
	"github.com/tavernhq/tavern/internal/testutil"
)

// The server starts the gateway on the configured address (port 0: a free
// one, which HTTPAddr reports), serves clients, and on Stop closes the
// listener and every client with 1001 before the boards stop.
func TestServerGatewayStartStop(t *testing.T) {
	cfg := testutil.NodeConfig(t, "gwstart", "sqlite:"+t.TempDir()+"/tavern.db", testutil.FreePort(t))
	cfg.Gateway.Listen = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := Start(context.Background(), &cfg, log, new(slog.LevelVar))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Stop()
		}
	}()
	addr := srv.HTTPAddr()
	if strings.HasSuffix(addr, ":0") || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("HTTPAddr %q", addr)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, "/readyz")

	c := gatewaytest.Dial(t, "ws://"+addr+"/ws")
	w := c.Hello("alice")
	if w.Str("node") != cfg.Node.Name {
		t.Fatalf("welcome: %v", w)
	}
	c.JoinFull("start-stop")
	c.Apply("start-stop", map[string]any{"kind": "chat", "text": "hi"})

	stopped = true
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	c.ExpectClose(1001)
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatal("the listener is still open after Stop")
	}
}

// A busy listen address fails the start with an error naming it.
func TestServerGatewayPortBusy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testutil.NodeConfig(t, "gwbusy", "sqlite:"+t.TempDir()+"/tavern.db", testutil.FreePort(t))
	cfg.Gateway.Listen = l.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := Start(context.Background(), &cfg, log, new(slog.LevelVar))
	if err == nil {
		_ = srv.Stop()
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("error %v does not name the address", err)
	}
}
