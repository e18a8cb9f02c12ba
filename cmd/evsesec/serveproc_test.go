package main

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
)

// lockedBuffer is a log sink that serve writes while the test reads it.
type lockedBuffer = testtool.SyncBuffer

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
	// exited is closed when the process has exited (spawnServe waits for it).
	exited chan struct{}
	err    error // the process's exit, once exited is closed
}

// spawnServe starts the built binary bin with args (its command line, "serve" first). It is
// killed by its PID when the test ends, if still running.
func spawnServe(t *testing.T, bin string, args ...string) *serveProc {
	t.Helper()
	s := &serveProc{errb: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = s.errb
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	return s
}

// startServe starts `bin serve --certs root --listen 127.0.0.1:0` plus extra arguments on the
// embedded broker and returns once it answers a call, with the address its broker listens on.
func startServe(t *testing.T, bin, root string, extra ...string) (*serveProc, string) {
	t.Helper()
	s, addr := spawnServeListening(t, bin, append([]string{"serve", "--certs", root, "--listen", "127.0.0.1:0"}, extra...)...)
	waitAnswering(t, "tcp://"+addr, s.stderr)
	return s, addr
}

// listeningAddr is the embedded broker's address in serve's log.
var listeningAddr = regexp.MustCompile(`msg="embedded MQTT broker listening" address=(\S+)`)

// spawnServeListening is spawnServe for a serve on the embedded broker with --listen on port 0:
// the port is the one the broker was given by the kernel, read from serve's log, so no other
// process can take it between the test choosing it and serve binding it.
func spawnServeListening(t *testing.T, bin string, args ...string) (*serveProc, string) {
	t.Helper()
	s := spawnServe(t, bin, args...)
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningAddr.FindStringSubmatch(s.stderr()); m != nil {
			return s, m[1]
		}
		select {
		case <-s.exited:
			t.Fatalf("serve exited (%v) before its broker listened:\n%s", s.err, s.stderr())
		case <-deadline:
			t.Fatalf("serve's broker did not listen:\n%s", s.stderr())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *serveProc) stderr() string { return s.errb.String() }

// stop ends the service by its PID (SIGTERM) and expects exit 0.
func (s *serveProc) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		t.Fatalf("serve did not exit within 10s of SIGTERM:\n%s", s.stderr())
	}
	if s.err != nil {
		t.Errorf("serve exit %v:\n%s", s.err, s.stderr())
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
