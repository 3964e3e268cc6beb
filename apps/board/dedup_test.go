package board

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/tavernhq/tavern/internal/sysconfig"
)

func TestDedupKeysTellIDsApart(t *testing.T) {
	if keyOf("ab", "c") == keyOf("a", "bc") {
		t.Fatal("the user and the op id run together")
	}
	if keyOf("alice", "o-1") != keyOf("alice", "o-1") {
		t.Fatal("the same id gives two keys")
	}
	seen := make(map[dedupKey]string, 100000)
	for i := range 100000 {
		id := fmt.Sprint("op-", i)
		if other, ok := seen[keyOf("u", id)]; ok {
			t.Fatalf("%s and %s share a key", id, other)
		}
		seen[keyOf("u", id)] = id
	}
}

// A busy board remembers dedup_keep op ids: they must stay small (they
// were about 150 bytes each as strings, most of a busy node's live heap).
func TestDedupMemoryPerID(t *testing.T) {
	const keep = 10000
	cfg := sysconfig.Default()
	cfg.Board.DedupKeep = keep
	st := &boardState{deps: &Deps{Config: cfg.Board}, dedup: make(map[dedupKey]int64)}
	ids := make([]string, 3*keep)
	for i := range ids {
		ids[i] = fmt.Sprintf("client-%08d-op", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i, id := range ids {
		st.remember(keyOf("player-one", id), int64(i+1))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perID := float64(after.HeapAlloc-before.HeapAlloc) / keep
	t.Logf("%.0f bytes per remembered id", perID)
	if perID > 100 {
		t.Fatalf("%.0f bytes per remembered op id; want <= 100", perID)
	}
	runtime.KeepAlive(st)
	runtime.KeepAlive(ids)
}
