package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
)

// startMosquitto starts Debian's mosquitto on a free loopback port with the given extra config
// lines (none: its default configuration, which leaves Nagle's algorithm on for its sockets) and
// returns its URL. It is stopped by its PID when the benchmark ends. Without mosquitto the
// benchmark is skipped.
func startMosquitto(b *testing.B, extra string) string {
	b.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		b.Skip("mosquitto not installed")
	}
	dir := b.TempDir()
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// A listener needs allow_anonymous in mosquitto 2.0; everything else is the default.
		conf := filepath.Join(dir, fmt.Sprintf("mosquitto-%d.conf", attempt))
		text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n%s", port, extra)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if listening(addr, exited) {
			b.Cleanup(func() {
				cmd.Process.Signal(syscall.SIGTERM) // by PID
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
			})
			return "tcp://" + addr
		}
		cmd.Process.Kill()
		<-exited
		if attempt == 2 {
			b.Fatalf("mosquitto did not start:\n%s", out.String())
		}
	}
}

func listening(addr string, exited <-chan struct{}) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// mosquittoRuns are the cases of BenchmarkMosquittoFrameworkCall: mosquitto's default
// configuration (Nagle on the broker's sockets) with the framework-like caller; the same with a
// caller that acknowledges at once, which leaves only the module's leg to wait on delayed ACKs;
// and set_tcp_nodelay true, the setting the framework's sources recommend.
var mosquittoRuns = []struct {
	name, config     string
	callerAcksAtOnce bool
}{
	{"default", "", false},
	{"default-caller-acks-at-once", "", true},
	{"nodelay", "set_tcp_nodelay true\n", false},
}

// BenchmarkMosquittoFrameworkCall is one get_leaf_certificate_info from a caller that behaves
// like the EVerest framework's (fwCaller: QoS 2, TCP_NODELAY on its socket, results handed over
// at PUBREL) to the service, through Debian's mosquitto, one call right after the other.
func BenchmarkMosquittoFrameworkCall(b *testing.B) {
	st := generated(b, 10)
	for _, run := range mosquittoRuns {
		b.Run("config="+run.name, func(b *testing.B) {
			url := startMosquitto(b, run.config)
			serveOn(b, st, url)
			c, err := dialFWCaller(url, everest.NewTopics("", "", ""), "bench_caller")
			if err != nil {
				b.Fatal(err)
			}
			defer c.close()
			if run.callerAcksAtOnce {
				if err := c.ackAtOnce(); err != nil {
					b.Fatal(err)
				}
			}
			args := json.RawMessage(mqttArgs)
			if _, err := c.call(mqttCmd, "warm", args); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := c.call(mqttCmd, fmt.Sprint(i), args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
