package main

// The memory of `evsesec serve` (embedded broker) stays bounded when local clients publish huge
// and many large messages to its command topics, and the service keeps answering.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/internal/testtool"
)

// rawPublisher is a minimal MQTT 3.1.1 client that streams a PUBLISH (QoS 0) of any size from a
// small buffer, so the test itself never holds the message.
type rawPublisher struct {
	c net.Conn
	w *bufio.Writer
}

func mqttLength(n int) []byte { return testtool.MQTTRemainingLength(nil, n) }

func dialRawPublisher(addr, clientID string) (*rawPublisher, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	body.Write([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60})
	_ = binary.Write(&body, binary.BigEndian, uint16(len(clientID)))
	body.WriteString(clientID)
	pkt := append([]byte{0x10}, mqttLength(body.Len())...)
	pkt = append(pkt, body.Bytes()...)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(pkt); err != nil {
		c.Close()
		return nil, err
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("CONNACK %x: %v", ack, err)
	}
	_ = c.SetDeadline(time.Time{})
	return &rawPublisher{c: c, w: bufio.NewWriterSize(c, 64<<10)}, nil
}

// publish sends prefix, then n bytes of filler, then suffix as one message. The error is the
// broker closing the connection, which is what a refused packet looks like.
func (p *rawPublisher) publish(topic, prefix string, n int, suffix string) error {
	return p.publishFlags(0x30, topic, prefix, n, suffix)
}

// publishFlags is publish with the first byte given (0x31: retained).
func (p *rawPublisher) publishFlags(first byte, topic, prefix string, n int, suffix string) error {
	total := 2 + len(topic) + len(prefix) + n + len(suffix)
	p.w.WriteByte(first)
	p.w.Write(mqttLength(total))
	_ = binary.Write(p.w, binary.BigEndian, uint16(len(topic)))
	p.w.WriteString(topic)
	p.w.WriteString(prefix)
	chunk := bytes.Repeat([]byte("A"), 64<<10)
	for n > 0 {
		k := min(n, len(chunk))
		if _, err := p.w.Write(chunk[:k]); err != nil {
			return err
		}
		n -= k
	}
	p.w.WriteString(suffix)
	return p.w.Flush()
}

func (p *rawPublisher) close() {
	_ = p.c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = p.c.Write([]byte{0xe0, 0})
	p.c.Close()
}

// procStatusKiB reads a field (VmHWM, VmRSS) of /proc/<pid>/status in KiB.
func procStatusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return v
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestServeMemoryBoundedAgainstLargeMessages(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	p := newCallPKI(t)
	bin := buildBinary(t)
	root := t.TempDir()
	srv, addr := startServe(t, bin, root)
	pid := srv.cmd.Process.Pid
	topics := everest.NewTopics("", "", "")
	cmdTopic := topics.Cmd("install_ca_certificate")
	start := procStatusKiB(t, pid, "VmRSS")

	// Three 100 MB messages: each is refused from its header; the sender is disconnected.
	for i := range 3 {
		pub, err := dialRawPublisher(addr, fmt.Sprintf("huge-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		_ = pub.publish(cmdTopic, `{"msg_type":"Cmd","data":{"id":"x","origin":"attacker","args":{"certificate_type":"V2G","certificate":"`, 100<<20, `"}}}`)
		pub.close()
	}
	t.Logf("after the huge messages: peak %d KiB", procStatusKiB(t, pid, "VmHWM"))

	// Many large messages at once, each under the transport's limit: 16 clients, 8 messages of
	// 1.9 MB each, without waiting for anything.
	var wg sync.WaitGroup
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pub, err := dialRawPublisher(addr, fmt.Sprintf("large-%d", c))
			if err != nil {
				t.Error(err)
				return
			}
			defer pub.close()
			for m := range 8 {
				prefix := fmt.Sprintf(`{"msg_type":"Cmd","data":{"id":"%d-%d","origin":"attacker","args":{"certificate_type":"V2G","certificate":"`, c, m)
				if err := pub.publish(cmdTopic, prefix, 1900<<10, `"}}}`); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("after the large messages: peak %d KiB", procStatusKiB(t, pid, "VmHWM"))

	// Still answering: a normal call, and an input just over the store's 1 MiB limit (a PEM,
	// newlines escaped in JSON) arrives and gets the command's own failure code.
	caller := everesttest.NewCaller(t, "tcp://"+addr, topics, "ocpp")
	big := strings.Repeat(p.root, (1<<20)/len(p.root)+1)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := caller.CallWithin("install_ca_certificate", map[string]any{"certificate": big, "certificate_type": "V2G"}, 5*time.Second)
		if err == nil && r.Error == nil && string(r.Retval) == `"InvalidFormat"` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("1 MiB input: %+v %v\n%s", r, err, srv.stderr())
		}
	}
	if r, err := caller.Call("install_ca_certificate", map[string]any{"certificate": p.root, "certificate_type": "V2G"}); err != nil || string(r.Retval) != `"Accepted"` {
		t.Fatalf("normal call after the flood: %+v %v\n%s", r, err, srv.stderr())
	}

	hwm := procStatusKiB(t, pid, "VmHWM")
	t.Logf("RSS at start %d KiB, peak %d KiB", start, hwm)
	if hwm > 200<<10 {
		t.Errorf("peak resident memory %d MiB, want under 200 MiB", hwm>>10)
	}
	srv.stop(t)
}

// Behind mosquitto configured without a size limit, evsesec's own client refuses to read a huge
// packet (its connection is closed before the body is read and reconnects), so the service's
// memory stays bounded and it answers afterwards.
func TestServeMemoryBoundedBehindAnUnlimitedBroker(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc")
	}
	url := everesttest.StartMosquitto(t)
	addr := strings.TrimPrefix(url, "tcp://")
	p := newCallPKI(t)
	bin := buildBinary(t)
	root := t.TempDir()
	s := spawnServe(t, bin, "serve", "--certs", root, "--broker", url)
	topics := everest.NewTopics("", "", "")
	caller := everesttest.NewCaller(t, url, topics, "ocpp")
	call := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := caller.CallWithin("install_ca_certificate", map[string]any{"certificate": p.root, "certificate_type": "V2G"}, 2*time.Second)
			if err == nil && r.Error == nil && string(r.Retval) == `"Accepted"` {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %+v %v\n%s", what, r, err, s.stderr())
			}
		}
	}
	call("before")
	pid := s.cmd.Process.Pid
	// A retained oversized message on a command topic: the broker replays it on every
	// subscription, so it must not end every connection.
	pub, err := dialRawPublisher(addr, "retained")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.publishFlags(0x31, topics.Cmd("install_ca_certificate"), `{"msg_type":"Cmd","data":{"id":"r","origin":"attacker","args":{"certificate_type":"V2G","certificate":"`, 10<<20, `"}}}`); err != nil {
		t.Fatal(err)
	}
	pub.close()
	for i := range 3 {
		pub, err := dialRawPublisher(addr, fmt.Sprintf("huge-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.publish(topics.Cmd("install_ca_certificate"), `{"msg_type":"Cmd","data":{"id":"x","origin":"attacker","args":{"certificate_type":"V2G","certificate":"`, 60<<20, `"}}}`); err != nil {
			t.Fatal(err)
		}
		pub.close()
	}
	call("after the huge messages")
	hwm := procStatusKiB(t, pid, "VmHWM")
	t.Logf("peak %d KiB", hwm)
	if hwm > 100<<10 {
		t.Errorf("peak resident memory %d MiB behind an unlimited broker, want under 100 MiB", hwm>>10)
	}
	if !strings.Contains(s.stderr(), "over the limit") {
		t.Errorf("the service does not say why it dropped the connection:\n%s", s.stderr())
	}
	s.stop(t)
}
