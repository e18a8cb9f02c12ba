package bench

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/internal/testtool"
)

// fwCaller is a calling module that talks MQTT the way the EVerest framework's client library
// does (libmosquitto in framework v0.25, MQTT-C before): its own socket has TCP_NODELAY, every
// packet is one write, calls and results are QoS 2, and a QoS 2 message is handed to the module
// when the PUBREL arrives (after the PUBREC/PUBREL exchange), not when the PUBLISH does. It uses
// the v0.25 topics and envelope, like everesttest.Caller. It is a minimal MQTT 3.1.1 client: no
// reconnection, no retries, one call at a time.
type fwCaller struct {
	conn     net.Conn
	r        *bufio.Reader
	wmu      sync.Mutex
	topics   everest.Topics
	origin   string
	nextMID  uint16
	inflight map[uint16][]byte // incoming QoS 2 messages between PUBLISH and PUBREL
	// rbuf is the packet read buffer and free the result buffers to reuse: the caller reads
	// into memory it keeps, as a C client does with malloc and free. The benchmarks run it in
	// the module's process, where allocating every (padded) result anew would make the
	// module's garbage collector pay for the caller's reads, which a caller in its own process
	// never does.
	rbuf    []byte
	free    chan []byte
	results chan []byte
	readErr chan error
	// quickAck, when set, re-arms TCP_QUICKACK on the caller's socket after every read: a
	// caller whose own leg never waits for a delayed ACK, to measure the module's leg alone.
	quickAck func()
}

// dialFWCaller connects to the broker at rawURL (tcp://host:port) and subscribes the results of
// origin's calls to the provider of topics.
func dialFWCaller(rawURL string, topics everest.Topics, origin string) (*fwCaller, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	// Go sets TCP_NODELAY on every TCP connection already; said here because it is the point.
	if err := conn.(*net.TCPConn).SetNoDelay(true); err != nil {
		conn.Close()
		return nil, err
	}
	c := &fwCaller{conn: conn, r: bufio.NewReader(conn), topics: topics, origin: origin,
		inflight: map[uint16][]byte{}, results: make(chan []byte, 1), readErr: make(chan error, 1),
		free: make(chan []byte, 4)}
	// CONNECT: MQTT 3.1.1, clean session, keep-alive 20 s (the framework's).
	var p []byte
	p = appendString(p, "MQTT")
	p = append(p, 4, 0x02, 0, 20)
	p = appendString(p, origin)
	if err := c.write(0x10, p); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if h, body, err := c.readPacket(); err != nil || h != 0x20 || len(body) != 2 || body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("CONNACK: header %#x body %v: %v", h, body, err)
	}
	// SUBSCRIBE the response topics at QoS 2.
	p = binary.BigEndian.AppendUint16(nil, c.mid())
	p = appendString(p, topics.CmdResponseSubscription(origin))
	p = append(p, 2)
	if err := c.write(0x82, p); err != nil {
		conn.Close()
		return nil, err
	}
	if h, body, err := c.readPacket(); err != nil || h != 0x90 || len(body) != 3 || body[2] != 2 {
		conn.Close()
		return nil, fmt.Errorf("SUBACK: header %#x body %v: %v", h, body, err)
	}
	conn.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (c *fwCaller) mid() uint16 {
	c.nextMID++
	if c.nextMID == 0 {
		c.nextMID = 1
	}
	return c.nextMID
}

// write sends one packet in one write, as libmosquitto does.
func (c *fwCaller) write(header byte, body []byte) error {
	pkt := append(testtool.MQTTRemainingLength([]byte{header}, len(body)), body...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(pkt)
	return err
}

func (c *fwCaller) readPacket() (byte, []byte, error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		mul *= 128
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	body := c.rbuf[:n]
	_, err = io.ReadFull(c.r, body)
	return h, body, err
}

// readLoop answers the broker's packets: PUBREC of our call → PUBREL; a result PUBLISH → kept,
// PUBREC; its PUBREL → PUBCOMP, then the result is delivered (libmosquitto's order).
func (c *fwCaller) readLoop() {
	for {
		h, body, err := c.readPacket()
		if err != nil {
			c.readErr <- err
			return
		}
		if c.quickAck != nil {
			c.quickAck()
		}
		switch h & 0xf0 {
		case 0x30: // PUBLISH
			if len(body) < 2 {
				c.readErr <- errors.New("short PUBLISH")
				return
			}
			tl := int(binary.BigEndian.Uint16(body))
			rest := body[2+tl:]
			if (h>>1)&3 != 2 || len(rest) < 2 {
				c.readErr <- fmt.Errorf("result at QoS %d, want 2", (h>>1)&3)
				return
			}
			mid := binary.BigEndian.Uint16(rest)
			var held []byte
			select {
			case held = <-c.free:
			default:
			}
			c.inflight[mid] = append(held[:0], rest[2:]...)
			err = c.write(0x50, rest[:2]) // PUBREC
		case 0x50: // PUBREC of our call
			err = c.write(0x62, body[:2]) // PUBREL
		case 0x60: // PUBREL of a result
			mid := binary.BigEndian.Uint16(body)
			err = c.write(0x70, body[:2]) // PUBCOMP
			if msg, ok := c.inflight[mid]; ok {
				delete(c.inflight, mid)
				c.results <- msg
			}
		case 0x70: // PUBCOMP of our call: done
		}
		if err != nil {
			c.readErr <- err
			return
		}
	}
}

// call publishes a Cmd (QoS 2, not waiting for the broker's acknowledgement, as the framework
// does not) and returns the result's payload. Hand it back with release when done with it.
func (c *fwCaller) call(name, id string, args json.RawMessage) ([]byte, error) {
	payload := fmt.Appendf(nil, `{"msg_type":"Cmd","data":{"id":%q,"args":%s,"origin":%q}}`, id, args, c.origin)
	p := appendString(nil, c.topics.Cmd(name))
	p = binary.BigEndian.AppendUint16(p, c.mid())
	p = append(p, payload...)
	if err := c.write(0x34, p); err != nil {
		return nil, err
	}
	select {
	case msg := <-c.results:
		return msg, nil
	case err := <-c.readErr:
		return nil, err
	case <-time.After(10 * time.Second):
		return nil, errors.New("no result within 10 s")
	}
}

// release hands a result's payload back for reuse.
func (c *fwCaller) release(msg []byte) {
	select {
	case c.free <- msg:
	default:
	}
}

// ackAtOnce makes the caller acknowledge everything it reads at once (see quickAck).
func (c *fwCaller) ackAtOnce() error {
	raw, err := c.conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	c.quickAck = func() {
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1) })
	}
	return nil
}

func (c *fwCaller) close() {
	c.write(0xe0, nil) // DISCONNECT
	c.conn.Close()
}
