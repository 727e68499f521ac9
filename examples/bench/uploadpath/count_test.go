package uploadpath_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// opCounter counts operations by name. Safe for concurrent use.
type opCounter struct {
	mu gosync.Mutex
	n  map[string]int
}

func newOpCounter() *opCounter { return &opCounter{n: map[string]int{}} }

func (c *opCounter) add(name string, k int) {
	c.mu.Lock()
	c.n[name] += k
	c.mu.Unlock()
}

// snapshot returns a copy of the counts so far.
func (c *opCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// since returns the counts added after snap, and their total.
func (c *opCounter) since(snap map[string]int) (map[string]int, int) {
	now := c.snapshot()
	out := map[string]int{}
	total := 0
	for k, v := range now {
		if d := v - snap[k]; d != 0 {
			out[k] = d
			total += d
		}
	}
	return out, total
}

// fmtOps prints counts as "name=n name=n" in name order.
func fmtOps(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// redisCounter is a go-redis hook counting every command by name, each
// command of a pipeline or transaction separately (MULTI/EXEC included).
type redisCounter struct{ c *opCounter }

func (h redisCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.c.add(strings.ToUpper(cmd.Name()), 1)
		return next(ctx, cmd)
	}
}

func (h redisCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.c.add(strings.ToUpper(cmd.Name()), 1)
		}
		return next(ctx, cmds)
	}
}

// httpCounter counts every request by method before sending it.
type httpCounter struct {
	c    *opCounter
	next http.RoundTripper
}

func (h httpCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	h.c.add(req.Method, 1)
	return h.next.RoundTrip(req)
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// commandCPU is the CPU time so far of every process whose command name is
// name (redis-server, versitygw), summed, read from /proc (clock ticks of
// 10 ms, the Linux default). These services may also serve other runs on
// the machine, so a delta is an upper bound for this run's share.
func commandCPU(name string) time.Duration {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closeAt := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closeAt < open || s[open+1:closeAt] != name {
			continue
		}
		f := strings.Fields(s[closeAt+1:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
		st, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
		total += time.Duration(ut+st) * 10 * time.Millisecond
	}
	return total
}

// scanData returns a JPEG's entropy-coded data: from the byte after the
// first SOS header to the end (EOI included), which the lossless
// passthrough keeps bit for bit while replacing every header before it.
func scanData(d []byte) ([]byte, error) {
	if len(d) < 4 || d[0] != 0xFF || d[1] != 0xD8 {
		return nil, errors.New("not a JPEG")
	}
	for i := 2; i+4 <= len(d); {
		if d[i] != 0xFF {
			return nil, fmt.Errorf("no marker at %d", i)
		}
		m, n := d[i+1], int(d[i+2])<<8|int(d[i+3])
		if m == 0xDA {
			if i+2+n > len(d) {
				return nil, errors.New("truncated SOS")
			}
			return d[i+2+n:], nil
		}
		i += 2 + n
	}
	return nil, errors.New("no SOS")
}

// storedPassthrough reports whether the image the Service stored for an
// upload of in kept in's entropy-coded data unchanged, that is, whether the
// upload took compress's lossless passthrough rather than a re-encode.
func storedPassthrough(ctx context.Context, s *service, sessionID, imageID string, in []byte) (bool, error) {
	rc, _, err := s.svc.OpenImage(ctx, sessionID, imageID)
	if err != nil {
		return false, err
	}
	defer func() { _ = rc.Close() }()
	stored, err := io.ReadAll(rc)
	if err != nil {
		return false, err
	}
	a, err := scanData(in)
	if err != nil {
		return false, err
	}
	b, err := scanData(stored)
	if err != nil {
		return false, err
	}
	return bytes.Equal(a, b), nil
}

func b2f(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
