package console

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// errNotRegistered: EPMD answered that no node of that name is
// registered with it.
var errNotRegistered = errors.New("not registered")

// epmdPort asks the EPMD at addr for the distribution port of the node
// alive (the part of its name before @): PORT_PLEASE2_REQ of the Erlang
// distribution protocol. Ergo's own lookup has no deadline (and indexes
// an empty answer), so the console asks itself.
func epmdPort(ctx context.Context, addr, alive string) (uint16, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	req := make([]byte, 3+len(alive))
	binary.BigEndian.PutUint16(req, uint16(1+len(alive)))
	req[2] = 122 // PORT_PLEASE2_REQ
	copy(req[3:], alive)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var head [2]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return 0, fmt.Errorf("epmd answer: %w", err)
	}
	if head[0] != 119 { // PORT2_RESP
		return 0, fmt.Errorf("epmd answer: unexpected tag %d", head[0])
	}
	if head[1] != 0 {
		return 0, errNotRegistered
	}
	var port [2]byte
	if _, err := io.ReadFull(c, port[:]); err != nil {
		return 0, fmt.Errorf("epmd answer: %w", err)
	}
	return binary.BigEndian.Uint16(port[:]), nil
}
