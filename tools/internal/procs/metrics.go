package procs

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metrics scrapes http://addr/metrics (Prometheus text format) and
// returns each metric's value summed over its label sets, by name.
func Metrics(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: HTTP %d", addr, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
			rest = line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// Mem is a process's memory: the Go runtime's heap and stacks in use
// (from /metrics) and the resident set (from /proc).
type Mem struct {
	HeapInuse  float64 `json:"heap_inuse"`
	StackInuse float64 `json:"stack_inuse"`
	RSS        float64 `json:"rss"`
	Goroutines float64 `json:"goroutines"`
}

// GoMem is heap plus stacks in use: what live objects and goroutines cost.
func (m Mem) GoMem() float64 { return m.HeapInuse + m.StackInuse }

// ReadMem reads the memory of the process pid serving /metrics at addr.
func ReadMem(addr string, pid int) (Mem, error) {
	m, err := Metrics(addr)
	if err != nil {
		return Mem{}, err
	}
	out := Mem{HeapInuse: m["go_memstats_heap_inuse_bytes"], StackInuse: m["go_memstats_stack_inuse_bytes"],
		Goroutines: m["go_goroutines"]}
	if out.HeapInuse == 0 {
		return out, fmt.Errorf("metrics of %s: no go_memstats_heap_inuse_bytes", addr)
	}
	if pid > 0 {
		out.RSS, _ = RSS(pid)
	}
	return out, nil
}

// RSS is the resident set of process pid in bytes (VmRSS).
func RSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
