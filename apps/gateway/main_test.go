package gateway_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(memNodeEnv); dir != "" {
		runMemNode(dir)
		return
	}
	goleak.VerifyTestMain(m,
		// The database drivers keep pool goroutines that outlive a test's
		// store by design; glebarez/sqlite and pgx close them lazily.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		// Ergo's embedded EPMD server never closes its listener (each test
		// node serves one on its own port).
		goleak.IgnoreAnyFunction("github.com/ergo-services/ergo/proto/dist.(*epmd).serve"),
	)
}
