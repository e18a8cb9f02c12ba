package everesttest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// connectSubscribed connects the fake manager's or caller's client (po names its broker and
// connection settings) and returns once the broker has acknowledged its subscriptions: filters,
// each to onMessage, subscribed again on every (re)connection. name ("fake manager", "fake
// caller ocpp") opens the failures.
func connectSubscribed(t testing.TB, name string, po *paho.ClientOptions, filters map[string]byte, onMessage paho.MessageHandler) paho.Client {
	t.Helper()
	return connectResubscribing(t, name, po, filters, onMessage, nil)
}

// connectResubscribing is connectSubscribed that also calls resubscribed, when not nil, each time
// the subscriptions have been made again after a reconnection.
func connectResubscribing(t testing.TB, name string, po *paho.ClientOptions, filters map[string]byte, onMessage paho.MessageHandler, resubscribed func()) paho.Client {
	t.Helper()
	subscribed := make(chan error, 1)
	var connections atomic.Int32
	po.SetOnConnectHandler(func(c paho.Client) {
		tok := c.SubscribeMultiple(filters, onMessage)
		tok.WaitTimeout(5 * time.Second)
		if connections.Add(1) > 1 && resubscribed != nil && tok.Error() == nil {
			resubscribed()
		}
		select {
		case subscribed <- tok.Error():
		default:
		}
	})
	c := paho.NewClient(po)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect %v: %v", name, po.Servers, tok.Error())
	}
	select {
	case err := <-subscribed:
		if err != nil {
			t.Fatalf("%s: subscribe: %v", name, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no SUBACK", name)
	}
	return c
}

// outbox publishes what a fake's message callback sends, in order, from a goroutine of its own.
// The fakes' clients deliver messages in order, and paho's Publish called from such a callback
// blocks for its write timeout (30 s) when the client disconnects meanwhile: the fake outlives
// the test and goleak fails the package. close stops the goroutine, before the client
// disconnects; what is sent after close is dropped (the fake is going away).
type outbox struct {
	mu     sync.Mutex
	closed bool
	ch     chan outMsg
	done   chan struct{}
}

type outMsg struct {
	c        paho.Client
	topic    string
	qos      byte
	retained bool
	payload  []byte
}

func newOutbox() *outbox {
	o := &outbox{ch: make(chan outMsg, 1000), done: make(chan struct{})}
	go func() {
		defer close(o.done)
		for m := range o.ch {
			m.c.Publish(m.topic, m.qos, m.retained, m.payload) // not waited for, as from the callback
		}
	}()
	return o
}

// publish queues a message for c; safe in a message callback.
func (o *outbox) publish(c paho.Client, topic string, qos byte, retained bool, payload []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.ch <- outMsg{c: c, topic: topic, qos: qos, retained: retained, payload: payload}
	}
}

// close hands the queued messages to the client and stops the goroutine.
func (o *outbox) close() {
	o.mu.Lock()
	if !o.closed {
		o.closed = true
		close(o.ch)
	}
	o.mu.Unlock()
	<-o.done
}
