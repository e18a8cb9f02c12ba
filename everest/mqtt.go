package everest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// QoS is the quality of service of every framework message (the framework uses 2 throughout).
const QoS = 2

// Timeouts of the MQTT client.
const (
	// DefaultConnectTimeout bounds one connection attempt.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultReconnectInterval is the longest pause between reconnection attempts after the
	// broker went away (EVerest's client retries every 2 s).
	DefaultReconnectInterval = 2 * time.Second
	// keepAlive is EVerest's MQTT keep-alive.
	keepAlive = 20 * time.Second
	// ackTimeout bounds the wait for a subscription's or publication's acknowledgement.
	ackTimeout = 10 * time.Second
)

// conn is one MQTT 3.1.1 client connection with automatic reconnection (paho).
type conn struct {
	c   paho.Client
	log *slog.Logger
}

// connOptions configure dial.
type connOptions struct {
	broker         Broker
	clientID       string
	connectTimeout time.Duration
	reconnectMax   time.Duration
	// onConnect runs after every successful (re)connection, in its own goroutine; it is where
	// subscriptions are (re)made, since a clean session loses them with the connection.
	onConnect func(*conn)
	log       *slog.Logger
	// onLost, when set, is called with false when the connection is lost.
	onLost func(connected bool)
}

// dial connects once and returns the connection, or the reason it failed.
func dial(ctx context.Context, o connOptions) (*conn, error) {
	if err := o.broker.validate(); err != nil {
		return nil, err
	}
	if o.connectTimeout <= 0 {
		o.connectTimeout = DefaultConnectTimeout
	}
	if o.reconnectMax <= 0 {
		o.reconnectMax = DefaultReconnectInterval
	}
	log := o.log
	po := paho.NewClientOptions().
		AddBroker(o.broker.URL).
		SetClientID(o.clientID).
		SetProtocolVersion(4).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetKeepAlive(keepAlive).
		SetConnectTimeout(o.connectTimeout).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(o.reconnectMax).
		SetConnectRetry(false).
		SetCustomOpenConnectionFn(openLimited). // our own socket (netconn.go), bounding the packets paho reads
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Warn("lost the MQTT broker; reconnecting", "broker", o.broker.String(), "err", err)
			if o.onLost != nil {
				o.onLost(false)
			}
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			log.Debug("reconnecting to the MQTT broker", "broker", o.broker.String())
		})
	if o.broker.Username != "" {
		po.SetUsername(o.broker.Username).SetPassword(o.broker.Password)
	}
	if o.broker.TLS != nil {
		po.SetTLSConfig(o.broker.TLS)
	}
	if o.onConnect != nil {
		f := o.onConnect
		po.SetOnConnectHandler(func(pc paho.Client) { f(&conn{c: pc, log: log}) })
	}
	c := paho.NewClient(po)
	t := c.Connect()
	select {
	case <-t.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	case <-time.After(o.connectTimeout + time.Second):
		c.Disconnect(0)
		return nil, fmt.Errorf("connect to MQTT broker %s: timeout", o.broker)
	}
	if err := t.Error(); err != nil {
		return nil, fmt.Errorf("connect to MQTT broker %s: %w", o.broker, err)
	}
	return &conn{c: c, log: log}, nil
}

// wait waits for a paho token, ctx or the ack timeout. It gives up as soon as the connection is
// lost: the session is clean, so a flow cut off by a lost connection never completes.
func (c *conn) wait(ctx context.Context, t paho.Token) error {
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-t.Done():
			return t.Error()
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return errors.New("no acknowledgement from the broker")
		case <-tick.C:
			if !c.connected() {
				return errors.New("connection to the broker lost")
			}
		}
	}
}

// publish sends payload at QoS 2 and waits for the broker's acknowledgement. It must not be
// called from a message callback (paho delivers callbacks in order, one at a time).
func (c *conn) publish(ctx context.Context, topic string, payload []byte, retain bool) error {
	if err := c.wait(ctx, c.c.Publish(topic, QoS, retain, payload)); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// publishAsync sends payload without waiting for the broker. paho's Publish may still wait for
// its outgoing goroutine (up to 30 s), so message callbacks hand their messages to the
// runner's sender instead (sender.go).
func (c *conn) publishAsync(topic string, payload []byte) {
	c.c.Publish(topic, QoS, false, payload)
}

// subscribe subscribes filter at QoS 2 with cb as its handler and waits for the SUBACK. Messages
// the service must not hold (see admit) are dropped here, before cb copies them.
func (c *conn) subscribe(ctx context.Context, filter string, cb func(topic string, payload []byte, retained bool)) error {
	t := c.c.Subscribe(filter, QoS, func(_ paho.Client, m paho.Message) {
		if reason := admit(len(m.Payload())); reason != "" {
			dropped.note(c.log, m.Topic(), len(m.Payload()), reason)
			return
		}
		cb(m.Topic(), m.Payload(), m.Retained())
	})
	if err := c.wait(ctx, t); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	// A SUBACK that refuses the filter (0x80) completes paho's token without an error: the
	// subscription was not made, and the caller must make it again.
	if st, ok := t.(*paho.SubscribeToken); ok {
		if code, ok := st.Result()[filter]; ok && code >= subscriptionRefused {
			return fmt.Errorf("subscribe %s: the broker refused it (SUBACK %#x)", filter, code)
		}
	}
	return nil
}

// subscriptionRefused is the SUBACK return code of a refused filter (MQTT 3.1.1 §3.9.3).
const subscriptionRefused = 0x80

// connected reports whether the connection is up (not while reconnecting).
func (c *conn) connected() bool { return c.c.IsConnectionOpen() }

// close disconnects, giving queued messages a quarter of a second.
func (c *conn) close() { c.c.Disconnect(250) }

// randomID returns n random bytes in hex, for client ids and call ids.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, the form of the framework's call ids.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Memory admission of incoming messages. Every command runs in its own goroutine and holds its
// message (and its decoded arguments) until it has answered, so a burst of large messages would
// otherwise pile up in memory faster than the commands refuse them.
const (
	// largeMessageBytes: no legitimate command comes near it (a chain of a few certificates is
	// a few KiB), so only such messages are ever refused for memory.
	largeMessageBytes = 64 << 10
	// heapBudget is the live heap above which large messages are dropped until commands in
	// progress have released theirs.
	heapBudget = 64 << 20
)

// admit returns why a message of n bytes is dropped, or "" when it may be handed on.
func admit(n int) string {
	switch {
	case n > MaxMessageBytes:
		return fmt.Sprintf("larger than %d bytes", MaxMessageBytes)
	case n > largeMessageBytes && overBudget():
		return "large message while the service's memory is at its budget"
	}
	return ""
}

// lastGC is when overBudget last collected garbage.
var lastGC struct {
	sync.Mutex
	at time.Time
}

// overBudget reports whether the heap is above heapBudget. The heap figure counts garbage not yet
// collected, so before refusing, a collection is run (at most one a second): a service that is
// idle after a burst would otherwise refuse large messages until the runtime's next collection.
func overBudget() bool {
	if heapBytes() <= heapBudget {
		return false
	}
	lastGC.Lock()
	defer lastGC.Unlock()
	if time.Since(lastGC.at) < time.Second {
		return true
	}
	runtime.GC()
	lastGC.at = time.Now()
	return heapBytes() > heapBudget
}

// heapBytes reads the bytes of heap objects, live or not yet swept (no stop of the world).
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// dropLog reports dropped messages: the first at once, then at most one summary a second, so a
// flood cannot flood the log too.
type dropLog struct {
	mu    sync.Mutex
	last  time.Time
	count int
}

var dropped dropLog

func (d *dropLog) note(log *slog.Logger, topic string, n int, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.count++
	if time.Since(d.last) < time.Second {
		return
	}
	log.Warn("dropped an MQTT message", "topic", topic, "bytes", n, "reason", reason, "dropped_since_last_report", d.count)
	d.last, d.count = time.Now(), 0
}
