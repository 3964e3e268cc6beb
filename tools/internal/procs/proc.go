package procs

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is a program that prints "... serving http://ADDR/" once it
// listens (tavern-server, wsbaseline).
type Proc struct {
	Addr   string // host:port from its serving line
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartProc runs bin with args (and env added) and waits up to within for
// its serving line; its output goes to log (nil: discarded).
func StartProc(ctx context.Context, bin string, args, env []string, log io.Writer, within time.Duration) (*Proc, error) {
	if log == nil {
		log = io.Discard
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(log, line)
			if i := strings.Index(line, "serving http://"); i >= 0 && !found {
				found = true
				addr <- strings.TrimSuffix(strings.TrimPrefix(line[i:], "serving http://"), "/")
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	select {
	case p.Addr = <-addr:
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("%s exited before serving", bin)
	case <-time.After(within):
	case <-ctx.Done():
	}
	p.Stop(time.Second)
	return nil, fmt.Errorf("%s not serving within %v", bin, within)
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM and kills the process after grace.
func (p *Proc) Stop(grace time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
