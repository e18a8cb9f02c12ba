package everest

import (
	"fmt"
	"net"
	"net/url"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// maxPacketBytes bounds an MQTT packet evsesec's client reads from any broker: a message of
// MaxMessageBytes plus its topic and header. paho allocates a packet's whole length as soon as it
// has read the packet's header, and has no limit of its own, so a broker that forwards anything
// (mosquitto without message_size_limit / max_packet_size) could otherwise make the service
// allocate 256 MiB per message. A larger packet ends the connection before its body is read; the
// client reconnects and subscribes again (the session is clean, so the message is gone).
//
// The exception is a PUBLISH with the RETAIN flag, which a broker sets only on the retained
// messages it replays when a subscription is made: refusing one would end every connection at the
// same message again. It is read (one message per topic and connection, not a flood) and dropped
// by the subscription's size check before it is copied.
const maxPacketBytes = MaxMessageBytes + 64<<10

// openLimited dials the broker with our own socket (openConn: tcp, unix, TLS; EVerest's brokers are local, so no
// proxy) and wraps the connection in a packetLimit.
func openLimited(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	c, err := openConn(uri, o)
	if err != nil {
		return nil, err
	}
	return &packetLimit{Conn: c, max: maxPacketBytes}, nil
}

// packetLimit follows the MQTT framing of what is read from a connection (a type byte, the
// remaining length in 1–4 bytes of 7 bits, then that many bytes) and fails the read that
// completes a length over max, so the reader never gets to allocate it.
type packetLimit struct {
	net.Conn
	max int

	state    int // 0: at a packet's first byte, 1: in its length, 2: in its body
	retained bool
	length   int // remaining length decoded so far
	shift    uint
	body     int // body bytes still to come
}

func (c *packetLimit) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if serr := c.scan(p[:n]); serr != nil {
		c.Conn.Close()
		return 0, serr
	}
	return n, err
}

func (c *packetLimit) scan(b []byte) error {
	for len(b) > 0 {
		switch c.state {
		case 0:
			c.state, c.length, c.shift = 1, 0, 0
			c.retained = b[0]&0xf1 == 0x31 // PUBLISH with RETAIN
			b = b[1:]
		case 1:
			v := b[0]
			b = b[1:]
			c.length |= int(v&0x7f) << c.shift
			c.shift += 7
			if c.length > c.max && !c.retained {
				return fmt.Errorf("MQTT packet of at least %d bytes from the broker, over the limit of %d; closing the connection (set message_size_limit on the broker)", c.length, c.max)
			}
			if v&0x80 == 0 {
				c.state, c.body = 2, c.length
				if c.body == 0 {
					c.state = 0
				}
			} else if c.shift > 21 {
				return fmt.Errorf("malformed MQTT remaining length from the broker")
			}
		case 2:
			k := min(c.body, len(b))
			c.body -= k
			b = b[k:]
			if c.body == 0 {
				c.state = 0
			}
		}
	}
	return nil
}
