package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tavernhq/tavern/tools/internal/procs"
	"github.com/tavernhq/tavern/tools/load"
)

type memPoint struct {
	Clients int       `json:"clients"`
	Boards  int       `json:"boards"`
	Mem     procs.Mem `json:"mem"`
}

// memResult is one system's idle-memory run in one round.
type memResult struct {
	System string     `json:"system"`
	Round  int        `json:"round"`
	Err    string     `json:"error,omitempty"`
	Points []memPoint `json:"points"`
	// Per idle client (hello said, one board of BoardSize joined) and
	// per extra board (joined and left by one client, so it stays
	// active with no member), in bytes: Go heap + stacks in use, and RSS.
	PerClientGo  float64 `json:"per_client_go"`
	PerClientRSS float64 `json:"per_client_rss"`
	PerBoardGo   float64 `json:"per_board_go"`
	PerBoardRSS  float64 `json:"per_board_rss"`
}

// memory connects idle clients step by step and reads the server's
// memory after each step, then activates MemBoards boards.
func (b *bench) memory(ctx context.Context, sys system, round int) memResult {
	res := memResult{System: sys.name, Round: round}
	b.logf("round %d: memory of %s", round, sys.name)
	env := []string{"GOGC=" + strconv.Itoa(b.o.MemGOGC)}
	rn, err := sys.start(ctx, env)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer rn.stop()
	read := func(clients, boards int) error {
		time.Sleep(b.o.MemSettle)
		m, err := procs.ReadMem(rn.metrics[0], rn.pids[0])
		if err != nil {
			return err
		}
		res.Points = append(res.Points, memPoint{Clients: clients, Boards: boards, Mem: m})
		return nil
	}
	if err := read(0, 0); err != nil {
		res.Err = err.Error()
		return res
	}
	var runners []*load.Runner
	defer func() {
		for _, r := range runners {
			r.Close()
		}
	}()
	clients := 0
	for clients < b.o.MemClients && ctx.Err() == nil {
		n := min(b.o.MemStep, b.o.MemClients-clients)
		r, err := load.New(load.Config{URLs: rn.urls, Clients: n, BoardSize: b.o.BoardSize,
			Prefix: fmt.Sprintf("m%d-%d-%s", round, clients, procs.RandomHex(2)), ConnectConcurrency: 32})
		if err != nil {
			res.Err = err.Error()
			return res
		}
		runners = append(runners, r)
		cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		err = r.Connect(cctx)
		cancel()
		if err != nil {
			res.Err = fmt.Sprintf("at %d clients: %v", clients, err)
			return res
		}
		clients += n
		if err := read(clients, 0); err != nil {
			res.Err = err.Error()
			return res
		}
	}
	first, last := res.Points[0].Mem, res.Points[len(res.Points)-1].Mem
	res.PerClientGo = (last.GoMem() - first.GoMem()) / float64(clients)
	res.PerClientRSS = (last.RSS - first.RSS) / float64(clients)
	if b.o.MemBoards > 0 {
		if err := touchBoards(ctx, rn.urls[0], fmt.Sprintf("mb%d-%s", round, procs.RandomHex(2)), b.o.MemBoards, rn); err != nil {
			res.Err = "boards: " + err.Error()
			return res
		}
		if err := read(clients, b.o.MemBoards); err != nil {
			res.Err = err.Error()
			return res
		}
		after := res.Points[len(res.Points)-1].Mem
		res.PerBoardGo = (after.GoMem() - last.GoMem()) / float64(b.o.MemBoards)
		res.PerBoardRSS = (after.RSS - last.RSS) / float64(b.o.MemBoards)
	}
	b.logf("round %d: %s: %.1f KB per idle client (heap+stacks), %.1f KB RSS; %.1f KB per board",
		round, sys.name, res.PerClientGo/1024, res.PerClientRSS/1024, res.PerBoardGo/1024)
	return res
}

// touchBoards joins and leaves n boards named prefix-0.. over a few
// connections, so each becomes active (a board actor in Tavern) with no
// member left.
func touchBoards(ctx context.Context, url, prefix string, n int, rn *running) error {
	const conns = 16
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- touchSome(ctx, url, fmt.Sprintf("%s-c%d", prefix, c), prefix, c, conns, n, rn)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func touchSome(ctx context.Context, url, user, prefix string, first, stride, n int, rn *running) error {
	opts := &websocket.DialOptions{}
	if rn.tls != nil {
		opts.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: rn.tls}}
	}
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return err
	}
	defer ws.CloseNow()
	ws.SetReadLimit(-1)
	await := func(t string) error {
		for {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			_, b, err := ws.Read(rctx)
			cancel()
			if err != nil {
				return err
			}
			f, err := load.ParseFrame(b)
			if err != nil {
				return err
			}
			if f.T == "error" {
				return fmt.Errorf("%s: %s", f.Code, f.Msg)
			}
			if f.T == t {
				return nil
			}
		}
	}
	send := func(s string) error { return ws.Write(ctx, websocket.MessageText, []byte(s)) }
	if err := send(`{"t":"hello","user":"` + user + `"}`); err != nil {
		return err
	}
	if err := await("welcome"); err != nil {
		return err
	}
	for i := first; i < n; i += stride {
		board := fmt.Sprintf("%s-%d", prefix, i)
		if err := send(`{"t":"join","board":"` + board + `"}`); err != nil {
			return err
		}
		if err := await("joined"); err != nil {
			return fmt.Errorf("join %s: %w", board, err)
		}
		if err := send(`{"t":"leave","board":"` + board + `"}`); err != nil {
			return err
		}
		if err := await("left"); err != nil {
			return err
		}
	}
	return nil
}
