package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The database drivers keep pool goroutines that outlive a store.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}
