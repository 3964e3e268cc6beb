package gateway_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tavernhq/tavern/internal/testutil"
)

const chromiumPath = "/usr/bin/chromium"

// TestBrowserBoardPage drives the board page in headless Chromium: two
// pages on one board, a put and a move made in one appear in the other.
func TestBrowserBoardPage(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if testutil.InCI() {
			t.Fatalf("chromium is required under CI: %v", err)
		}
		t.Skipf("no chromium at %s (apt-get install chromium)", chromiumPath)
	}
	n := start(t, nil)
	b := newBoard()

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := context.WithTimeout(allocCtx, 60*time.Second)
	defer cancel()
	page1, cancel1 := chromedp.NewContext(ctx)
	defer cancel1()
	if err := chromedp.Do(page1); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	page2, cancel2 := chromedp.NewContext(page1) // a second tab of the same browser
	defer cancel2()

	connect := func(ctx context.Context, user string) {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Navigate(n.URL+"/"), chromedp.WaitVisible(chromedp.ID("svg")))
		if err != nil {
			t.Fatalf("%s: load the page: %v", user, err)
		}
		state, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](
			fmt.Sprintf(`window.tavern.connect({user: %q, board: %q})`, user, b), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: connect: %v", user, err)
		}
		if state["status"] != "joined" || state["user"] != user || state["node"] != n.Name {
			t.Fatalf("%s: state after connect: %v", user, state)
		}
	}
	connect(page1, "alice")
	connect(page2, "bob")

	ack, err := chromedp.Run(page1, chromedp.Evaluate[map[string]any](`window.tavern.put({id: "e1", asset: "orc", pos: [1, 0, 1]})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if ack["t"] != "ack" || ack["seq"] != 1.0 {
		t.Fatalf("put ack: %v", ack)
	}
	poll := func(ctx context.Context, expr string, want any) {
		t.Helper()
		got, err := chromedp.Run(ctx, chromedp.Poll[any](expr, chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(20*time.Millisecond)))
		if err != nil {
			now, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.tavern.state())`))
			t.Fatalf("poll %s: %v (state %v)", expr, err, now)
		}
		if want != nil && !jsonEqual(got, want) {
			t.Fatalf("poll %s: %v, want %v", expr, got, want)
		}
	}
	poll(page2, `(() => { const e = window.tavern.state().entities.find(e => e.id === "e1"); return e ? e.pos : false })()`, []any{1, 0, 1})

	if _, err := chromedp.Run(page1, chromedp.Evaluate[map[string]any](`window.tavern.move("e1", 5, null, 7)`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("move: %v", err)
	}
	poll(page2, `(() => { const e = window.tavern.state().entities.find(e => e.id === "e1"); return e && e.pos[0] === 5 && e.pos[2] === 7 ? e.pos : false })()`, []any{5, 0, 7})
	// The drawn entity follows: its data attributes carry the position.
	poll(page2, `(() => { const el = document.querySelector('[data-entity="e1"]'); return el && el.dataset.x === "5" && el.dataset.z === "7" })()`, true)
	// And the presence lists both.
	poll(page1, `window.tavern.state().present.join(",") === "alice,bob" ? window.tavern.state().present : false`, []any{"alice", "bob"})

	// The page and the database agree.
	if s := n.BoardSeq(b); s != 2 {
		t.Fatalf("durable seq %d", s)
	}
	cancel2()
	cancel1()
	cancel()
	cancelAlloc()
}
