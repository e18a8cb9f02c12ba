package everesttest

import (
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
