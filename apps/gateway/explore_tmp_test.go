package gateway_test

import (
	"testing"
	"time"
	"strings"
)

func TestExploreMalformed(t *testing.T) {
	n := start(t, nil)
	addr := strings.TrimPrefix(n.URL, "http://")
	cases := map[string][]byte{
		"unmasked":      frame(true, 0, opText, false, []byte(`{"t":"ping"}`)),
		"rsv1":          frame(true, 4, opText, true, []byte(`{"t":"ping"}`)),
		"rsv3":          frame(true, 1, opText, true, []byte(`{"t":"ping"}`)),
		"opcode3":       frame(true, 0, 0x3, true, []byte(`x`)),
		"opcodeB":       frame(true, 0, 0xB, true, []byte(`x`)),
		"bigping":       frame(true, 0, opPing, true, make([]byte, 126)),
		"fragping":      frame(false, 0, opPing, true, []byte("x")),
		"contfirst":     frame(true, 0, opCont, true, []byte("x")),
		"huge":          header(true, opText, 1<<62),
		"over":          frame(true, 0, opText, true, make([]byte, 70000)),
		"overfrag":      append(frame(false, 0, opText, true, make([]byte, 40000)), frame(true, 0, opCont, true, make([]byte, 40000))...),
		"textInText":    append(frame(false, 0, opText, true, []byte("{")), frame(true, 0, opText, true, []byte("}"))...),
		"badclosecode":  frame(true, 0, opClose, true, []byte{0x03, 0xE7}),
		"close1byte":    frame(true, 0, opClose, true, []byte{0x03}),
		"closebadutf8":  frame(true, 0, opClose, true, []byte{0x03, 0xE8, 0xff, 0xfe}),
		"binary":        frame(true, 0, opBin, true, []byte("x")),
		"badutf8":       frame(true, 0, opText, true, []byte{'"', 0xff, '"'}),
		"len127small":   append([]byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0}, []byte("hello")...),
	}
	for name, b := range cases {
		r := dialRaw(t, addr, nil, nil)
		r.hello("u")
		if err := r.write(b); err != nil {
			t.Logf("%s: write: %v", name, err)
		}
		start := time.Now()
		if m, err := r.next(2 * time.Second); err == nil { t.Logf("%s: got %v", name, m); continue }
		code := r.closeCode(10 * time.Second)
		t.Logf("%-14s close %d after %v", name, code, time.Since(start))
	}
}
