package testtool

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// SWTPM is a software TPM started for one test, listening on 127.0.0.1 only.
type SWTPM struct {
	port int    // data port; the control port is port+1
	dir  string // TPM state directory
}

// Address is the simulator's socket as a URL (tcp://127.0.0.1:PORT).
func (s *SWTPM) Address() string { return "tcp://127.0.0.1:" + strconv.Itoa(s.port) }

// TCTI is the TCTI string for OpenSSL's tpm2 provider and tpm2-tools.
func (s *SWTPM) TCTI() string { return "swtpm:host=127.0.0.1,port=" + strconv.Itoa(s.port) }

// StartSWTPM starts
//
//	swtpm socket --tpm2 --server type=tcp,port=P,bindaddr=127.0.0.1
//	  --ctrl type=tcp,port=P+1,bindaddr=127.0.0.1 --tpmstate dir=D
//	  --flags not-need-init,startup-clear
//
// with a fresh state directory, waits until it accepts connections and stops it (SIGTERM to its
// PID, then wait) when the test ends.
func StartSWTPM(t testing.TB) *SWTPM {
	t.Helper()
	bin := Require(t, "swtpm")
	dir := t.TempDir()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePortPair()
		if err != nil {
			t.Fatalf("finding free ports for swtpm: %v", err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--tpmstate", "dir="+dir,
			"--flags", "not-need-init,startup-clear")
		cmd.Stdout = &stderr
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting swtpm: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitListening(port, exited); err != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			lastErr = fmt.Errorf("%w (output: %s)", err, stderr.String())
			continue // most likely a port race with another process; try other ports
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited
			}
		})
		return &SWTPM{port: port, dir: dir}
	}
	t.Fatalf("swtpm did not start: %v", lastErr)
	return nil
}

// freePortPair finds a port P on 127.0.0.1 such that P and P+1 are both free right now.
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no two adjacent free ports")
}

// waitListening waits until the data port accepts a connection, or the process exits.
func waitListening(port int, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("swtpm exited: %v", err)
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("swtpm did not listen within 10s")
}
