package console_test

import (
	"io"
	"log"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Ergo reports refused handshakes (the wrong-cookie tests) through
	// the standard logger.
	if os.Getenv("TAVERN_TEST_LOG") == "" {
		log.SetOutput(io.Discard)
	}
	goleak.VerifyTestMain(m,
		// The database drivers keep pool goroutines that outlive a test's
		// store by design.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		// Ergo's embedded EPMD server never closes its listener.
		goleak.IgnoreAnyFunction("github.com/ergo-services/ergo/proto/dist.(*epmd).serve"),
	)
}
