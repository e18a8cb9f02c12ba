package tlsconf

import (
	"net"
	"sync"
)

// maxHelloBytes bounds what a connection records of its first bytes. A ClientHello with post-
// quantum key shares is under 2 KiB; a car's with a few trusted CAs under 1 KiB.
const maxHelloBytes = 64 << 10

// NewHelloListener wraps l so that every connection it accepts records its ClientHello (see
// NewHelloConn). Serve the SECC config on it, tls.NewListener(NewHelloListener(l), cfg), to
// honour the trusted CA indications of cars.
func NewHelloListener(l net.Listener) net.Listener { return helloListener{l} }

type helloListener struct{ net.Listener }

func (l helloListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewHelloConn(c), nil
}

// NewHelloConn wraps c so that the first TLS handshake message read from it, the ClientHello, is
// kept for the SECC config's GetCertificate: Go's ClientHelloInfo carries neither the
// trusted_ca_keys extension ISO 15118-2 cars send nor TLS 1.3's certificate_authorities, but it
// carries the connection. Pass the result to tls.Server. Only the first handshake message is
// kept (at most 64 KiB); everything after passes through untouched.
func NewHelloConn(c net.Conn) net.Conn { return &helloConn{Conn: c} }

type helloConn struct {
	net.Conn
	mu    sync.Mutex
	done  bool
	recs  []byte // record bytes not yet split into handshake fragments
	frags []byte // handshake bytes so far
	hello []byte // the complete ClientHello message, once read
}

func (c *helloConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.observe(p[:n])
	}
	return n, err
}

// observe adds bytes read to the recording until the first handshake message is complete, the
// data turns out not to be a TLS handshake, or the bound is reached.
func (c *helloConn) observe(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.recs = append(c.recs, b...)
	for len(c.recs) >= 5 {
		if c.recs[0] != typeHandshake {
			c.stop()
			return
		}
		n := int(c.recs[3])<<8 | int(c.recs[4])
		if len(c.recs) < 5+n {
			break
		}
		c.frags = append(c.frags, c.recs[5:5+n]...)
		c.recs = c.recs[5+n:]
		if len(c.frags) >= 4 {
			if m := 4 + (int(c.frags[1])<<16 | int(c.frags[2])<<8 | int(c.frags[3])); len(c.frags) >= m {
				c.hello = c.frags[:m:m]
				c.stop()
				return
			}
		}
	}
	if len(c.recs)+len(c.frags) > maxHelloBytes {
		c.stop()
	}
}

func (c *helloConn) stop() {
	c.done = true
	c.recs, c.frags = nil, nil // c.hello keeps its own reference
}

// clientHello returns the recorded ClientHello message, nil if there is none (yet).
func (c *helloConn) clientHello() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hello
}

// indicationsOf returns the CA indications of the ClientHello recorded on conn; none when conn
// was not wrapped by NewHelloConn or the hello is unreadable.
func indicationsOf(conn net.Conn) caIndications {
	hc, ok := conn.(*helloConn)
	if !ok {
		return caIndications{}
	}
	msg := hc.clientHello()
	if msg == nil {
		return caIndications{}
	}
	ci, err := parseClientHello(msg)
	if err != nil {
		return caIndications{}
	}
	return ci
}
