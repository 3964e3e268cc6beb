// Command wsbaseline is the plain broadcast server Tavern's benchmarks
// compare against: coder/websocket, the frames of PROTOCOL.md, no actors,
// no storage (see package broadcast). It prints
// "wsbaseline serving http://ADDR/" once it listens.
//
//	wsbaseline -listen 127.0.0.1:0
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tavernhq/tavern/tools/wsbaseline/broadcast"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "host:port to listen on (port 0: any)")
	queue := flag.Int("queue", 1024, "outbound queue per connection, in messages")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbaseline:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: broadcast.New(broadcast.Config{Queue: *queue}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("wsbaseline serving http://%s/\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "wsbaseline:", err)
		os.Exit(1)
	}
}
