package load

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress shows a run's progress on w (a terminal): a bar over the
// planned duration, with the current phase, deliveries per second, p99
// delivery latency and connected clients. Stop it before printing.
type Progress struct {
	bar  *progressbar.ProgressBar
	done chan struct{}
	end  chan struct{}
}

// StartProgress starts a bar for a run planned to last total.
func StartProgress(w io.Writer, r *Runner, total time.Duration) *Progress {
	p := &Progress{done: make(chan struct{}), end: make(chan struct{}),
		bar: progressbar.NewOptions64(max(total.Milliseconds(), 1),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(28),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true),
		)}
	start := time.Now()
	go func() {
		defer close(p.end)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
			}
			el := time.Since(start)
			if el > total {
				p.bar.ChangeMax64(el.Milliseconds() + 1000)
			}
			desc := fmt.Sprintf("%s | %d clients", *r.phaseName.Load(), r.Connected())
			if s := r.stats.Series(); len(s) > 0 {
				last := s[len(s)-1]
				desc += fmt.Sprintf(" | %d deliv/s | %d acks/s | p99 %.1f ms", last.Deliveries, last.Acks, last.DelivP99Ms)
			}
			p.bar.Describe(desc)
			_ = p.bar.Set64(el.Milliseconds())
		}
	}()
	return p
}

// Stop ends the bar.
func (p *Progress) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	<-p.end
	_ = p.bar.Finish()
	_ = p.bar.Exit()
}
