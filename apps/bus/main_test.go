package bus_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Ergo never stops the EPMD server a node starts (see quiesceNodes).
		goleak.IgnoreAnyFunction(epmdServe),
	)
}
