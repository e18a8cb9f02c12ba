package everest

import (
	"log/slog"
	"sync"
)

// sender publishes what the runner's message callbacks send (the ready sent again when a
// manager restarts, the Shutdown answers to calls that come while the runner stops), in the
// order they sent it, from a goroutine of the runner's own.
//
// paho hands messages to the callbacks one at a time (SetOrderMatters), and its Publish returns
// only once its outgoing goroutine has taken the packet: while that goroutine is stuck in a write
// (a broker that stopped reading) or gone (a connection going down), Publish waits for its write
// timeout, 30 s, and no message at all is handled meanwhile. The callbacks only queue; the
// sender's goroutine is the one that waits. Like the callbacks' own Publish before, it does not
// wait for the broker's acknowledgement.
type sender struct {
	log  *slog.Logger
	mu   sync.Mutex
	ch   chan outgoing // nil once stopped
	done chan struct{}
}

// outgoing is one message for a connection.
type outgoing struct {
	c       *conn
	topic   string
	payload []byte
}

// senderQueue bounds the messages waiting: the callbacks never block, and a burst beyond it
// (calls flooding a stopping runner) loses its Shutdown answers, not the message handling.
const senderQueue = maxPendingPerClient

func startSender(log *slog.Logger) *sender {
	s := &sender{log: log, ch: make(chan outgoing, senderQueue), done: make(chan struct{})}
	go s.run(s.ch)
	return s
}

func (s *sender) run(ch <-chan outgoing) {
	defer close(s.done)
	for m := range ch {
		m.c.publishAsync(m.topic, m.payload)
	}
}

// send queues payload for c; it never blocks. After stop it drops the message.
func (s *sender) send(c *conn, topic string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		return
	}
	select {
	case s.ch <- outgoing{c: c, topic: topic, payload: payload}:
	default:
		s.log.Warn("too many messages waiting to be sent; dropped one", "topic", topic)
	}
}

// stop takes no more messages; the goroutine sends those queued and ends (see stopped).
func (s *sender) stop() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// stopped is closed once the goroutine has handed every queued message to the client.
func (s *sender) stopped() <-chan struct{} { return s.done }
