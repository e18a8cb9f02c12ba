package main

import (
	"bytes"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// serveProc is a running `evsesec serve` process (the built binary) on the embedded broker.
type serveProc struct {
	cmd  *exec.Cmd
	errb *lockedBuffer
}

// startServe starts `bin serve --certs root --listen addr` (addr on 127.0.0.1) plus extra
// arguments and returns once it answers a call. It is killed by its PID when the test ends, if
// still running.
func startServe(t *testing.T, bin, root, addr string, extra ...string) *serveProc {
	t.Helper()
	s := &serveProc{errb: &lockedBuffer{}}
	s.cmd = exec.Command(bin, append([]string{"serve", "--certs", root, "--listen", addr}, extra...)...)
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, code := runCLI("call", "--broker", "tcp://"+addr, "--timeout", "1s", "is_ca_certificate_installed", `{"certificate_type":"MF"}`); code == 0 {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never answered:\n%s", s.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), code
}
