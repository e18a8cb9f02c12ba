package everest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// The module's own connection to the broker. Two things about it matter for latency:
//
//   - Reads are buffered. The MQTT client reads a packet's fixed header a byte at a time and
//     then its body, several system calls per packet; QoS 2 brings four packets per call in
//     each direction. One buffered read usually takes all of them.
//   - Every ACK of the broker's data leaves at once (TCP_QUICKACK, armed again between reads:
//     Linux clears it on its own). A QoS 2 exchange ends with the broker's PUBCOMP (of our
//     result), to which the module has nothing to answer, so its kernel would delay the ACK by
//     40 ms or more. A broker that leaves Nagle's algorithm on for its sockets — mosquitto in
//     its default configuration, set_tcp_nodelay false — holds the next command for the module
//     until that ACK comes: every call that follows another within the delayed-ACK time waited
//     for it. The module's own writes go out at once too (TCP_NODELAY, Go's default for TCP,
//     set explicitly here).
//
// Delivery is unchanged: the same packets, the same QoS 2 flows, in the same order.

// openConn dials the broker for paho (its CustomOpenConnectionFn): TCP with TCP_NODELAY and
// quick ACKs, TLS over such a TCP connection, or a Unix socket; reads buffered on all of them.
func openConn(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: o.ConnectTimeout}
	if d.Timeout <= 0 {
		d.Timeout = DefaultConnectTimeout
	}
	switch uri.Scheme {
	case "tcp", "mqtt":
		c, err := dialTCP(d, uri.Host)
		if err != nil {
			return nil, err
		}
		return newBufferedConn(c), nil
	case "ssl", "tls", "mqtts", "tcps":
		c, err := dialTCP(d, uri.Host)
		if err != nil {
			return nil, err
		}
		cfg := o.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(uri.Host); err == nil {
				cfg.ServerName = host
			} else {
				cfg.ServerName = uri.Host
			}
		}
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(d.Timeout))
		if err := tc.Handshake(); err != nil {
			tc.Close()
			return nil, err
		}
		tc.SetDeadline(time.Time{})
		return newBufferedConn(tc), nil
	case "unix":
		path := uri.Path
		if uri.Host != "" {
			path = uri.Host
		}
		c, err := d.Dial("unix", path)
		if err != nil {
			return nil, err
		}
		return newBufferedConn(c), nil
	}
	return nil, errors.New("unknown broker URL scheme " + uri.Scheme)
}

// dialTCP connects with TCP_NODELAY, and with quick ACKs where the system has them.
func dialTCP(d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetNoDelay(true); err != nil {
		tc.Close()
		return nil, err
	}
	raw, err := tc.SyscallConn()
	if err != nil || !setQuickAck(raw) {
		return tc, nil // no quick ACKs here: still a working connection
	}
	return &quickAckConn{TCPConn: tc, raw: raw}, nil
}

// quickAckConn re-arms TCP_QUICKACK before every read that follows one that returned data: the
// ACK of what was read leaves then (the kernel sends a pending ACK when the option is set), and
// the next segment finds the option armed. Doing it before the next read rather than right after
// this one keeps the system call off the path from the broker's packet to the client.
type quickAckConn struct {
	*net.TCPConn
	raw     syscall.RawConn
	pending bool // data was read since the option was last armed
}

func (c *quickAckConn) Read(p []byte) (int, error) {
	if c.pending {
		setQuickAck(c.raw)
		c.pending = false
	}
	n, err := c.TCPConn.Read(p)
	c.pending = n > 0
	return n, err
}

// bufferedConn reads through a buffer (see above); writes go straight to the connection, one
// write per packet, as paho makes them.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 16*1024)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
