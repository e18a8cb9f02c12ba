package everesttest

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/internal/testtool"
)

// StartBroker starts the embedded broker on a free loopback port and stops it when the test
// ends.
func StartBroker(t testing.TB) *everest.EmbeddedBroker {
	t.Helper()
	return StartBrokerAt(t, "127.0.0.1:0")
}

// StartBrokerAt starts the embedded broker on addr (host:port) and stops it when the test ends.
func StartBrokerAt(t testing.TB, addr string) *everest.EmbeddedBroker {
	t.Helper()
	var logger *slog.Logger
	if os.Getenv("EVSESEC_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	b, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: addr, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// StartMosquitto starts Debian's mosquitto on a free loopback port with an explicit config
// (listener on 127.0.0.1 only, anonymous access) and returns its URL. The broker is stopped by
// its PID when the test ends. Under CI=true a missing mosquitto fails the test; elsewhere it
// skips.
func StartMosquitto(t testing.TB) string {
	t.Helper()
	return StartMosquittoConfig(t, "persistence false\nset_tcp_nodelay true\nmax_queued_messages 0\nlog_dest stderr\n")
}

// StartMosquittoConfig is StartMosquitto with the config lines after the listener's own (an
// empty config is mosquitto's default configuration, which leaves Nagle's algorithm on for its
// sockets, as on a stock charger).
func StartMosquittoConfig(t testing.TB, config string) string {
	t.Helper()
	bin := testtool.Require(t, "mosquitto")
	dir := t.TempDir()
	for attempt := 0; ; attempt++ {
		port := FreePort(t)
		conf := filepath.Join(dir, fmt.Sprintf("mosquitto-%d.conf", attempt))
		// A listener needs allow_anonymous in mosquitto 2.0.
		text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n%s", port, config)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start mosquitto: %v", err)
		}
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if waitListening(addr, exited, 5*time.Second) {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM) // by PID, never by name
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			return "tcp://" + addr
		}
		_ = cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			t.Fatalf("mosquitto did not start on %s:\n%s", addr, out.String())
		}
	}
}

// waitListening waits until addr accepts connections; false if the process exited or time ran
// out.
func waitListening(addr string, exited <-chan struct{}, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
