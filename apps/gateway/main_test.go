package gateway_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The database drivers keep pool goroutines that outlive a test's
		// store by design; glebarez/sqlite and pgx close them lazily.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
