package gateway_test

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawWS is a WebSocket client written by hand on a TCP (or TLS) socket, so
// that tests can send what no well-behaved library would: unmasked or
// reserved-bit frames, lengths that lie, a message trickled byte by byte.
type rawWS struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
	wm sync.Mutex // writes
}

// WebSocket opcodes.
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// dialRaw connects to addr (host:port; tlsConf nil: plain) and upgrades
// /ws with header added to the request.
func dialRaw(t testing.TB, addr string, tlsConf *tls.Config, header http.Header) *rawWS {
	t.Helper()
	r, resp, err := tryDialRaw(t, addr, tlsConf, header)
	if err != nil {
		t.Fatalf("raw dial %s: %v (%s)", addr, err, resp)
	}
	return r
}

// tryDialRaw is dialRaw returning the error: on a refused upgrade, with
// the status line.
func tryDialRaw(t testing.TB, addr string, tlsConf *tls.Config, header http.Header) (*rawWS, string, error) {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsConf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, "", err
	}
	var key [16]byte
	_, _ = rand.Read(key[:])
	var req strings.Builder
	fmt.Fprintf(&req, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", addr)
	fmt.Fprintf(&req, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", base64.StdEncoding.EncodeToString(key[:]))
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req.String()); err != nil {
		c.Close()
		return nil, "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, "", err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, resp.Status, fmt.Errorf("upgrade refused: %s", resp.Status)
	}
	_ = c.SetDeadline(time.Time{})
	r := &rawWS{t: t, c: c, br: br}
	t.Cleanup(r.close)
	return r, resp.Status, nil
}

// frame encodes one frame; masked frames get a random key.
func frame(fin bool, rsv, op byte, masked bool, payload []byte) []byte {
	b0 := rsv<<4 | op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	var m byte
	if masked {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		out = append(out, m|byte(n))
	case n <= 0xFFFF:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// header encodes a masked frame's header claiming length n, with a zero
// mask key (so the payload bytes that follow go as they are).
func header(fin bool, op byte, n uint64) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, n)
	}
	return append(out, 0, 0, 0, 0)
}

// write sends raw bytes.
func (r *rawWS) write(b []byte) error {
	r.wm.Lock()
	defer r.wm.Unlock()
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := r.c.Write(b)
	return err
}

// send sends v as one masked text frame.
func (r *rawWS) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.write(frame(true, 0, opText, true, b))
}

// readFrame reads one server frame within d.
func (r *rawWS) readFrame(d time.Duration) (op byte, payload []byte, err error) {
	_ = r.c.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 != 0 {
		return 0, nil, errors.New("the server masked a frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 64<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}

// next returns the next text message within d, answering pings.
func (r *rawWS) next(d time.Duration) (map[string]any, error) {
	deadline := time.Now().Add(d)
	for {
		op, p, err := r.readFrame(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		switch op {
		case opText:
			var m map[string]any
			if err := json.Unmarshal(p, &m); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			return m, nil
		case opPing:
			if err := r.write(frame(true, 0, opPong, true, p)); err != nil {
				return nil, err
			}
		case opClose:
			return nil, closeErr(p)
		}
	}
}

// closeError is a close frame received.
type closeError struct{ code int }

func (e closeError) Error() string { return fmt.Sprintf("closed with %d", e.code) }

func closeErr(p []byte) error {
	if len(p) < 2 {
		return closeError{1005}
	}
	return closeError{int(binary.BigEndian.Uint16(p))}
}

// closeCode waits up to d for the connection to end, answering pings and
// skipping messages; it returns the close frame's code, or -1 if the
// server cut the socket without one.
func (r *rawWS) closeCode(d time.Duration) int {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for {
		_, err := r.next(time.Until(deadline))
		var ce closeError
		switch {
		case err == nil:
			continue
		case errors.As(err, &ce):
			return ce.code
		case isTimeout(err):
			r.t.Fatalf("connection still open after %v", d)
		default:
			return -1
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hello says hello as user (dev auth) and waits for the welcome.
func (r *rawWS) hello(user string) {
	r.t.Helper()
	if err := r.send(map[string]any{"t": "hello", "user": user}); err != nil {
		r.t.Fatal(err)
	}
	m, err := r.next(10 * time.Second)
	if err != nil || m["t"] != "welcome" {
		r.t.Fatalf("hello: %v %v", m, err)
	}
}

func (r *rawWS) close() { _ = r.c.Close() }
