package everest_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/evsesec/evsesec/everest/everesttest"
)

// rawClient is an MQTT 3.1.1 client that chooses its own packet identifiers and acknowledges
// nothing by itself, so a test can hold a delivery in flight.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, brokerURL, id string) *rawClient {
	t.Helper()
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawClient{t: t, c: c, rd: bufio.NewReader(c)}
	r.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, ClientIdentifier: id, Keepalive: 60}})
	if pk := r.read(); pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != 0 {
		t.Fatalf("CONNACK: %+v", pk)
	}
	return r
}

func (r *rawClient) send(pk packets.Packet) {
	r.t.Helper()
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Subscribe:
		pk.FixedHeader.Qos = 1 // [MQTT-3.8.1-1]
		err = pk.SubscribeEncode(&buf)
	}
	if err == nil {
		_, err = r.c.Write(buf.Bytes())
	}
	if err != nil {
		r.t.Fatal(err)
	}
}

// read reads the next packet; the deadline is a liveness bound only.
func (r *rawClient) read() packets.Packet {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hb, err := r.rd.ReadByte()
	if err != nil {
		r.t.Fatal(err)
	}
	var fh packets.FixedHeader
	if err := fh.Decode(hb); err != nil {
		r.t.Fatal(err)
	}
	n, _, err := packets.DecodeLength(r.rd)
	if err != nil {
		r.t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.rd, body); err != nil {
		r.t.Fatal(err)
	}
	fh.Remaining = n
	pk := packets.Packet{FixedHeader: fh, ProtocolVersion: 4}
	switch fh.Type {
	case packets.Connack:
		err = pk.ConnackDecode(body)
	case packets.Suback:
		err = pk.SubackDecode(body)
	case packets.Publish:
		err = pk.PublishDecode(body)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	return pk
}

// A client's SUBSCRIBE whose packet identifier equals that of a QoS 2 delivery still in flight
// to it is granted on the embedded broker. The two identifiers belong to different senders, but
// mochi v2.7 refuses such a SUBSCRIBE ("packet identifier in use", SUBACK 0x80): a module
// subscribing while the manager publishes its retained topics lost the subscription of the
// config answer, and never got its config.
func TestEmbeddedBrokerSubscribeBesideInflightDelivery(t *testing.T) {
	b := everesttest.StartBroker(t)
	raw := dialRaw(t, b.URL(), "raw")
	raw.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, ProtocolVersion: 4, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "held", Qos: 2}}})
	if pk := raw.read(); pk.FixedHeader.Type != packets.Suback || pk.PacketID != 1 || !bytes.Equal(pk.ReasonCodes, []byte{2}) {
		t.Fatalf("first SUBACK: %+v", pk)
	}

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("publisher").SetProtocolVersion(4).SetAutoReconnect(false))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	publish := func(topic string) {
		if tok := pub.Publish(topic, 2, false, []byte("x")); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	// The delivery stays in flight: the raw client never sends PUBREC.
	publish("held")
	held := raw.read()
	if held.FixedHeader.Type != packets.Publish || held.FixedHeader.Qos != 2 || held.PacketID == 0 {
		t.Fatalf("delivery: %+v", held)
	}

	raw.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, ProtocolVersion: 4, PacketID: held.PacketID,
		Filters: packets.Subscriptions{{Filter: "other", Qos: 2}}})
	if pk := raw.read(); pk.FixedHeader.Type != packets.Suback || pk.PacketID != held.PacketID || !bytes.Equal(pk.ReasonCodes, []byte{2}) {
		t.Fatalf("answer to a SUBSCRIBE whose identifier a delivery uses: type %d id %d codes %#x (want a SUBACK, id %d, granted QoS 2)",
			pk.FixedHeader.Type, pk.PacketID, pk.ReasonCodes, held.PacketID)
	}
	publish("other")
	if pk := raw.read(); pk.FixedHeader.Type != packets.Publish || pk.TopicName != "other" {
		t.Fatalf("after the subscription: %+v", pk)
	}
}
