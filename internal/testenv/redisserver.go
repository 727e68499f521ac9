package testenv

import (
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"
)

// FreePort returns a loopback TCP port nothing listened on a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: no free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

// RedisServer is a redis-server of a test's own on a free loopback port,
// without persistence, never the shared one: a test may kill it (losing
// every key) and start it again on the same port without disturbing any
// other test. It is killed when the test ends.
type RedisServer struct {
	// Addr is host:port, fixed for the server's life across restarts.
	Addr string
	t    testing.TB
	dir  string
	args []string
	proc *exec.Cmd
	done chan error // receives the running server's exit
}

// StartRedis starts a RedisServer with extra redis-server arguments (for
// example "--replicaof", host, port) and waits until it accepts
// connections. A missing redis-server binary is [Missing].
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server binary", err.Error())
	}
	s := &RedisServer{Addr: fmt.Sprintf("127.0.0.1:%d", FreePort(t)), t: t, dir: t.TempDir(), args: args}
	t.Cleanup(s.Kill)
	s.Start()
	return s
}

// Start (re)starts the server on its port and waits, up to 10 s, until it
// accepts connections. A port not yet released by the previous server is
// retried.
func (s *RedisServer) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", s.dir, "--loglevel", "warning"}, s.args...)
		proc := exec.Command("redis-server", args...)
		if err := proc.Start(); err != nil {
			s.t.Fatalf("testenv: starting redis-server: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- proc.Wait() }()
		s.proc, s.done = proc, done
		for {
			if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
				_ = c.Close()
				return
			}
			select {
			case err := <-done: // for example the port not yet free: try again
				s.proc = nil
				if time.Now().After(deadline) {
					s.t.Fatalf("testenv: redis-server on %s keeps exiting: %v", s.Addr, err)
				}
			case <-time.After(10 * time.Millisecond):
				if time.Now().After(deadline) {
					s.Kill()
					s.t.Fatalf("testenv: redis-server on %s did not start", s.Addr)
				}
				continue
			}
			break
		}
	}
}

// Kill stops the server with SIGKILL (no shutdown, nothing saved) and
// waits for it to exit. Killing a stopped server does nothing.
func (s *RedisServer) Kill() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Kill()
	<-s.done
	s.proc = nil
}
