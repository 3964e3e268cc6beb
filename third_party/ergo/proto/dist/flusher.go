package dist

import (
	"bufio"
	"io"
	"sync"
	"time"
)

var (
	// KeepAlive packet is just 4 bytes with zero value
	keepAlivePacket = []byte{0, 0, 0, 0}
	keepAlivePeriod = 15 * time.Second
)

func newLinkFlusher(w io.Writer) *linkFlusher { // tavern patch: no flush latency (see Flush)
	lf := &linkFlusher{
		writer: bufio.NewWriter(w),
		w:      w, // in case if we skip buffering
	}

	lf.timer = time.AfterFunc(keepAlivePeriod, func() {

		lf.mutex.Lock()
		defer lf.mutex.Unlock()

		// if we have no pending data to send we should
		// send a KeepAlive packet
		if lf.pending == false {
			lf.w.Write(keepAlivePacket)
			lf.timer.Reset(keepAlivePeriod)
			return
		}

		lf.writer.Flush()
		lf.pending = false
		lf.timer.Reset(keepAlivePeriod)
	})

	return lf
}

type linkFlusher struct {
	mutex  sync.Mutex
	writer *bufio.Writer
	w      io.Writer

	timer   *time.Timer
	pending bool
}

func (lf *linkFlusher) Write(b []byte) (int, error) {
	lf.mutex.Lock()
	defer lf.mutex.Unlock()

	l := len(b)
	lenB := l

	// long data write directly to the socket.
	if l > 64000 {
		for {
			n, e := lf.w.Write(b[lenB-l:])
			if e != nil {
				return n, e
			}
			// check if something left
			l -= n
			if l > 0 {
				continue
			}
			return lenB, nil
		}
	}

	// write data to the buffer
	for {
		n, e := lf.writer.Write(b)
		if e != nil {
			return n, e
		}
		// check if something left
		l -= n
		if l > 0 {
			continue
		}
		break
	}

	// tavern patch: the sender flushes (Flush) when its queue is empty;
	// arming a timer here cost a timer goroutine per flush, and a burst
	// was cut wherever the timer happened to fire.
	lf.pending = true
	return lenB, nil
}

// Flush writes out what the buffer holds (tavern patch): the sender calls
// it when no message waits in its queue, so a burst goes out in as few
// writes as the socket takes and a lone message goes out at once.
func (lf *linkFlusher) Flush() error {
	lf.mutex.Lock()
	defer lf.mutex.Unlock()
	if !lf.pending {
		return nil
	}
	lf.pending = false
	return lf.writer.Flush()
}

func (lf *linkFlusher) Stop() {
	if lf.timer != nil {
		lf.timer.Stop()
	}
}
