package everest_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/everest/everesttest"
)

// Two clients that each publish and receive QoS 2 (every module does: calls out, results in)
// keep their connections through thousands of round trips on the embedded broker. mochi-mqtt
// v2.7 keeps a client's and its own packet identifiers in one map; without the broker's renaming
// hook the two collide, the quotas leak and the broker disconnects the client ("receive maximum
// exceeded").
func TestEmbeddedBrokerQoS2BothWays(t *testing.T) {
	b := everesttest.StartBroker(t)
	var lost atomic.Int32
	connect := func(id string) paho.Client {
		po := paho.NewClientOptions().AddBroker(b.URL()).SetClientID(id).SetProtocolVersion(4).SetOrderMatters(false).
			SetAutoReconnect(false).SetConnectionLostHandler(func(paho.Client, error) { lost.Add(1) })
		c := paho.NewClient(po)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	subscribe := func(c paho.Client, filter string, cb paho.MessageHandler) {
		if tok := c.Subscribe(filter, 2, cb); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	responder, caller := connect("responder"), connect("caller")
	var inflight sync.WaitGroup
	subscribe(responder, "req", func(c paho.Client, m paho.Message) {
		c.Publish("resp", 2, false, m.Payload()) // answered from the callback: not waited for
	})
	const n, parallel = 3000, 16
	var answered atomic.Int32
	slots := make(chan struct{}, parallel)
	subscribe(caller, "resp", func(paho.Client, paho.Message) {
		answered.Add(1)
		<-slots
		inflight.Done()
	})
	// No deadline for the whole run, which a slow machine could cross with every round trip
	// answered: the bound is on progress, a free slot within 5 s.
	for i := 0; i < n && lost.Load() == 0; i++ {
		select {
		case slots <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatalf("no answers any more after %d (connections lost: %d)", answered.Load(), lost.Load())
		}
		inflight.Add(1)
		caller.Publish("req", 2, false, []byte("x"))
	}
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
	if lost.Load() != 0 || answered.Load() != n {
		t.Errorf("%d of %d round trips answered; connections lost: %d", answered.Load(), n, lost.Load())
	}
}
