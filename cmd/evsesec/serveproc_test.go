package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a log sink that serve writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitAnswering calls the service on broker (`evsesec call --broker broker`, with flags such as
// --everest-wire) until it answers, for at most 10 s, and returns the first answer; any answer
// will do. The test fails with log(), the service's log, when none comes.
func waitAnswering(t *testing.T, broker string, log func() string, flags ...string) string {
	t.Helper()
	args := append([]string{"call", "--broker", broker, "--timeout", "1s"}, flags...)
	args = append(args, "is_ca_certificate_installed", `{"certificate_type":"V2G"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if out, _, code := runCLI(args...); code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service never answered:\n%s", log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inProcServe is `evsesec serve` running in the test process, in a goroutine.
type inProcServe struct {
	cancel context.CancelFunc
	done   chan int
	// log is serve's stderr (its log); stdout is discarded.
	log *lockedBuffer
}

// serveInProcess runs serve with args in a goroutine. End it with a deferred stop or
// stopAnyExit (not t.Cleanup, so that it has ended before a deferred goleak check).
func serveInProcess(args ...string) *inProcServe {
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcServe{cancel: cancel, done: make(chan int, 1), log: &lockedBuffer{}}
	go func() { s.done <- serve(ctx, args, io.Discard, s.log) }()
	return s
}

// stop ends serve and expects exit status 0.
func (s *inProcServe) stop(t *testing.T) {
	t.Helper()
	if code, ended := s.end(t); ended && code != 0 {
		t.Errorf("serve exit %d:\n%s", code, s.log.String())
	}
}

// stopAnyExit ends serve, whatever its exit status.
func (s *inProcServe) stopAnyExit(t *testing.T) {
	t.Helper()
	s.end(t)
}

// end cancels serve's context and waits at most 15 s for serve to return its exit status.
func (s *inProcServe) end(t *testing.T) (code int, ended bool) {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		return code, true
	case <-time.After(15 * time.Second):
		t.Error("serve did not stop")
		return 0, false
	}
}

// serveProc is a running `evsesec serve` process (the built binary).
type serveProc struct {
	cmd  *exec.Cmd
	errb *lockedBuffer
}

// spawnServe starts the built binary bin with args (its command line, "serve" first). It is
// killed by its PID when the test ends, if still running.
func spawnServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	s := &serveProc{errb: &lockedBuffer{}}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = s.errb
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
	})
	return s
}

// startServe starts `bin serve --certs root --listen addr` (addr on 127.0.0.1) plus extra
// arguments on the embedded broker and returns once it answers a call.
func startServe(t *testing.T, bin, root, addr string, extra ...string) *serveProc {
	t.Helper()
	s := spawnServe(t, bin, append([]string{"serve", "--certs", root, "--listen", addr}, extra...)...)
	waitAnswering(t, "tcp://"+addr, s.stderr)
	return s
}

func (s *serveProc) stderr() string { return s.errb.String() }

// stop ends the service by its PID (SIGTERM) and expects exit 0.
func (s *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, s.cmd, 10*time.Second); code != 0 {
		t.Errorf("serve exit %d:\n%s", code, s.stderr())
	}
}

// runBinary runs a program and returns stdout, stderr and its exit status.
func runBinary(t *testing.T, name string, args ...string) (string, string, int) {
	t.Helper()
	return runCmd(t, exec.Command(name, args...))
}

// runCmd runs cmd with its stdout and stderr captured and returns them and its exit status.
func runCmd(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd.Args, err)
	}
	return out.String(), errb.String(), code
}
