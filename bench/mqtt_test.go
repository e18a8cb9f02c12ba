package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
)

// mqttService starts the embedded broker on 127.0.0.1 and the standalone service on it, for the
// store st, and returns the broker.
func mqttService(b *testing.B, st *Store) *everest.EmbeddedBroker {
	b.Helper()
	broker, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { broker.Close() })
	serveOn(b, st, broker.URL())
	return broker
}

// serveOn runs the standalone service for st on the broker at url until the benchmark ends.
func serveOn(b *testing.B, st *Store, url string) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, StartTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() { done <- r.Serve(ctx, api.NewDispatcher(open(b, st))) }()
	select {
	case <-r.Ready():
	case err := <-done:
		b.Fatalf("service: %v", err)
	case <-time.After(10 * time.Second):
		b.Fatal("service not ready")
	}
	b.Cleanup(func() {
		cancel()
		<-done
	})
}

// BenchmarkMQTTCommand is one get_leaf_certificate_info over MQTT (embedded broker, EVerest
// wire, QoS 2), from a caller module's point of view.
func BenchmarkMQTTCommand(b *testing.B) {
	forSizes(b, func(b *testing.B, st *Store) {
		broker := mqttService(b, st)
		ctx := context.Background()
		c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: everest.Broker{URL: broker.URL()}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		args := json.RawMessage(`{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`)
		if _, err := c.Call(ctx, "get_leaf_certificate_info", args); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := c.Call(ctx, "get_leaf_certificate_info", args); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMQTTEcho is the floor of BenchmarkMQTTCommand: a bare request and reply between two
// clients through the same broker, with the same QoS and payload sizes, and no store behind it.
func BenchmarkMQTTEcho(b *testing.B) {
	broker, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	connect := func(id string) paho.Client {
		o := paho.NewClientOptions().AddBroker(broker.URL()).SetClientID(id).SetProtocolVersion(4)
		cl := paho.NewClient(o)
		if t := cl.Connect(); !t.WaitTimeout(5*time.Second) || t.Error() != nil {
			b.Fatalf("connect: %v", t.Error())
		}
		return cl
	}
	echo, caller := connect("echo"), connect("caller")
	defer echo.Disconnect(0)
	defer caller.Disconnect(0)
	reply := []byte(`{"msg_type":"CmdResult","data":{"type":"result","data":{"id":"x","retval":{"status":"Accepted","info":{"key":"/etc/everest/certs/client/cso/SECC_LEAF.key","certificate":"/etc/everest/certs/client/cso/CPO_CERT_CHAIN.pem","certificate_single":"/etc/everest/certs/client/cso/SECC_LEAF.pem","certificate_count":3}},"origin":"evse_security"}}}`)
	echo.Subscribe("bench/req", 2, func(cl paho.Client, m paho.Message) {
		cl.Publish("bench/resp", 2, false, reply)
	}).Wait()
	got := make(chan struct{}, 1)
	caller.Subscribe("bench/resp", 2, func(paho.Client, paho.Message) { got <- struct{}{} }).Wait()
	req := []byte(fmt.Sprintf(`{"msg_type":"Cmd","data":{"id":"x","args":%s,"origin":"caller"}}`, `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		caller.Publish("bench/req", 2, false, req)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			b.Fatal("no echo")
		}
	}
}
