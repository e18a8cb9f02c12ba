package everest

import (
	"io"
	"net"
	"net/url"
	"runtime"
	"syscall"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The module's TCP connection to the broker has TCP_NODELAY and, on Linux, TCP_QUICKACK armed
// again between reads (the kernel clears it), so the broker's last packet of a QoS 2 exchange
// is acknowledged at once and a broker with Nagle's algorithm on does not hold the next command.
func TestBrokerConnSocketOptions(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	u, _ := url.Parse("tcp://" + l.Addr().String())
	c, err := openConn(u, paho.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-accepted
	defer srv.Close()
	sockopt := func(opt int) int {
		t.Helper()
		raw, err := c.(*bufferedConn).Conn.(interface {
			SyscallConn() (syscall.RawConn, error)
		}).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var v int
		var gerr error
		raw.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, opt) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		return v
	}
	if sockopt(syscall.TCP_NODELAY) == 0 {
		t.Error("TCP_NODELAY is off on the module's connection")
	}
	// Packets arrive and are read through the buffer whole and in order; each is answered at
	// once, as in a QoS 2 exchange, which makes the kernel treat the connection as interactive
	// and delay its ACKs unless quick ACKs are armed again.
	for i, msg := range []string{"\x70\x02\x00\x01", "\x30\x05\x00\x01ab", "\x62\x02\x00\x07", "\x70\x02\x00\x02", "\x70\x02\x00\x03"} {
		if _, err := srv.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("read %q, %v; want %q", got, err, msg)
		}
		if runtime.GOOS == "linux" && sockopt(syscall.TCP_QUICKACK) == 0 {
			t.Errorf("TCP_QUICKACK is not armed after reading packet %d", i)
		}
		if _, err := c.Write([]byte("\x50\x02\x00\x01")); err != nil {
			t.Fatal(err)
		}
		reply := make([]byte, 4)
		if _, err := io.ReadFull(srv, reply); err != nil {
			t.Fatal(err)
		}
	}
}

// Unix sockets and unknown schemes: a Unix socket connects (no TCP options apply), an unknown
// scheme is an error.
func TestBrokerConnSchemes(t *testing.T) {
	path := t.TempDir() + "/b.sock"
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	c, err := openConn(&url.URL{Scheme: "unix", Path: path}, paho.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil || b[0] != 'x' {
		t.Fatalf("unix read %q, %v", b, err)
	}
	c.Close()
	if _, err := openConn(&url.URL{Scheme: "ws", Host: "127.0.0.1:1"}, paho.ClientOptions{}); err == nil {
		t.Error("ws:// accepted")
	}
}
