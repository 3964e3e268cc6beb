package board

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/tavernhq/tavern/internal/sysconfig"
	"github.com/tavernhq/tavern/internal/testutil"
)

// benchBoards x benchWindow ops are in flight at once: many boards, each
// with a few ops waiting, as a busy node has.
const (
	benchBoards = 64
	benchWindow = 16
)

// runTavernOps sends total ops through clients -> board actors -> group
// commit and returns acknowledged ops per second.
func runTavernOps(b *testing.B, tn *testNode, round, total int) float64 {
	clients := make([]*client, benchBoards)
	for i := range clients {
		c := tn.client(fmt.Sprintf("u%d", i))
		board := fmt.Sprintf("r%d-b%d", round, i)
		c.join(board, -1, "")
		c.expect("joined")
		c.expect("presence")
		clients[i] = c
	}
	per := total / benchBoards
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			board := fmt.Sprintf("r%d-b%d", round, i)
			sent, acked := 0, 0
			for acked < per {
				for sent < per && sent-acked < benchWindow {
					sent++
					c.op(board, fmt.Sprint(sent), `{"kind":"chat","text":"hello there"}`, "")
				}
				switch c.nextType() {
				case "ack":
					acked++
				case "ev":
				default:
					b.Errorf("unexpected frame")
					return
				}
			}
		}()
	}
	wg.Wait()
	return float64(per*benchBoards) / time.Since(start).Seconds()
}

// runCreateInBatches writes the same rows with gorm's CreateInBatches(100)
// and returns rows per second: the baseline.
func runCreateInBatches(b *testing.B, db *gorm.DB, round, total int) float64 {
	type benchOp struct {
		BoardID   string `gorm:"primaryKey"`
		Seq       int64  `gorm:"primaryKey"`
		User      string
		OpID      string
		Op        []byte
		CreatedAt time.Time
	}
	if err := db.AutoMigrate(&benchOp{}); err != nil {
		b.Fatal(err)
	}
	rows := make([]benchOp, total)
	for i := range rows {
		rows[i] = benchOp{BoardID: fmt.Sprintf("r%d-b%d", round, i%benchBoards), Seq: int64(i/benchBoards + 1),
			User: "u", OpID: fmt.Sprint(i), Op: []byte(`{"kind":"chat","text":"hi"}`), CreatedAt: time.Now()}
	}
	start := time.Now()
	if err := db.CreateInBatches(rows, 100).Error; err != nil {
		b.Fatal(err)
	}
	return float64(total) / time.Since(start).Seconds()
}

// BenchmarkAckedOpsVsCreateInBatches runs the baseline and Tavern
// alternately (A B A B A B) on the same database and reports the median
// of the per-pair ratios. Target: >= 0.5.
func BenchmarkAckedOpsVsCreateInBatches(b *testing.B) {
	for _, backend := range []string{"postgres", "sqlite"} {
		b.Run(backend, func(b *testing.B) {
			var dsn string
			if backend == "postgres" {
				dsn = testutil.NewPostgres(b)
			} else {
				dsn = "sqlite:" + b.TempDir() + "/bench.db"
			}
			tn := startNodeB(b, dsn)
			db := openBaseline(b, dsn)
			const total = 64 * 400
			var ratios, tav, base []float64
			for round := 0; round < 3; round++ {
				bo := runCreateInBatches(b, db, round, total)
				to := runTavernOps(b, tn, round, total)
				base, tav = append(base, bo), append(tav, to)
				ratios = append(ratios, to/bo)
			}
			b.ReportMetric(median(tav), "tavern_ops/s")
			b.ReportMetric(median(base), "baseline_rows/s")
			b.ReportMetric(median(ratios), "ratio")
		})
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func openBaseline(b *testing.B, dsn string) *gorm.DB {
	var d gorm.Dialector
	if len(dsn) > 7 && dsn[:7] == "sqlite:" {
		d = sqlite.Open(dsn[7:] + ".baseline?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	} else {
		d = postgres.Open(dsn)
	}
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		b.Fatal(err)
	}
	sqlDB, _ := db.DB()
	b.Cleanup(func() { sqlDB.Close() })
	return db
}

func startNodeB(b *testing.B, dsn string) *testNode {
	return startNode(b, dsn, func(c *sysconfig.Config) { c.Board.Mailbox = 4096 })
}
