package everest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultListen is where the embedded broker listens unless told otherwise: loopback only.
const DefaultListen = "127.0.0.1:1883"

// Memory bounds of the MQTT transport. The store refuses any input over 1 MiB
// (store.MaxInputBytes) with the command's own failure code; a message carrying such an input is
// a little larger (JSON escaping of a PEM's newlines, the envelope), so the transport lets through
// twice that, and nothing bigger: a bigger message could never be a command the store would run,
// and holding it (the broker's copy, the client's, the decoded arguments) is what lets a local
// client exhaust the charger's memory.
const (
	// MaxMessageBytes bounds one MQTT packet the embedded broker reads, and one message evsesec's
	// client hands to a command: larger ones are dropped before they are copied.
	MaxMessageBytes = 2 << 20
	// maxPendingPerClient bounds the messages the embedded broker queues for one client that
	// reads slowly, and maxInflightPerClient the QoS 1/2 messages it keeps for one client until
	// they are acknowledged (mochi's defaults are 8192 each: 16 GiB of 2 MiB messages). A
	// message beyond them is dropped for that client. They are counts, high enough for any burst
	// of calls EVerest makes (dozens at once); what the queued messages may cost in bytes is
	// bounded by memoryGuard, which queues no large message while the process is at its memory
	// budget.
	maxPendingPerClient  = 1024
	maxInflightPerClient = 1024
	// maxClients bounds the connections of the embedded broker (an EVerest installation has a
	// few dozen modules).
	maxClients = 256
	// maxSessionExpiry bounds how long the embedded broker keeps the session (subscriptions and
	// queued messages) of a client that went away without a clean session.
	maxSessionExpiry = 5 * 60
)

// embeddedCapabilities are mochi's defaults with the memory bounds above.
func embeddedCapabilities() *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = MaxMessageBytes
	caps.MaximumClientWritesPending = maxPendingPerClient
	caps.MaximumInflight = maxInflightPerClient
	caps.ReceiveMaximum = maxInflightPerClient
	caps.MaximumClients = maxClients
	caps.MaximumSessionExpiryInterval = maxSessionExpiry
	return caps
}

// Broker says which MQTT broker to use and how to log in to it.
type Broker struct {
	// URL is tcp://host:port, a TLS URL (ssl://, tls://, mqtts://) or unix:///path/to/socket.
	URL string
	// Username and Password are sent in CONNECT when Username is set. The password is never
	// logged.
	Username string
	Password string
	// TLS configures a TLS URL; nil means the system roots and no client certificate.
	TLS *tls.Config
}

// String returns the broker URL without credentials, for logs and messages.
func (b Broker) String() string {
	u, err := url.Parse(b.URL)
	if err != nil {
		return b.URL
	}
	u.User = nil
	return u.String()
}

// validate checks the URL's scheme and that TLS settings go with a TLS URL.
func (b Broker) validate() error {
	u, err := url.Parse(b.URL)
	if err != nil {
		return fmt.Errorf("broker URL %q: %v", b.URL, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		if b.TLS != nil {
			return fmt.Errorf("broker URL %s: TLS settings need a TLS URL (ssl://, tls:// or mqtts://)", b)
		}
	case "ssl", "tls", "mqtts", "tcps":
	case "unix":
		if b.TLS != nil {
			return fmt.Errorf("broker URL %s: TLS settings do not apply to a Unix socket", b)
		}
	default:
		return fmt.Errorf("broker URL %q: scheme must be tcp, ssl, tls, mqtts or unix", b.URL)
	}
	if u.Scheme != "unix" && u.Host == "" {
		return fmt.Errorf("broker URL %q: no host", b.URL)
	}
	return nil
}

// TCPURL returns the broker URL of host:port.
func TCPURL(host, port string) string { return "tcp://" + net.JoinHostPort(host, port) }

// UnixURL returns the broker URL of a Unix socket path.
func UnixURL(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "unix://" + path
}

// TLSConfig builds the client TLS settings for an external broker: caFile (PEM) replaces the
// system roots when set; certFile and keyFile, both or neither, are the client certificate.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("broker CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("broker client certificate: give both the certificate and the key file")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("broker client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// EmbeddedOptions configure the embedded broker.
type EmbeddedOptions struct {
	// Listen is the TCP address; empty means DefaultListen (unless Socket is set).
	Listen string
	// Socket is a Unix socket path to listen on instead of TCP. Access is then governed by the
	// socket file's permissions (0660).
	Socket string
	// TLS, when set, makes the TCP listener a TLS listener.
	TLS *tls.Config
	// Logger receives the broker's errors; nil discards them.
	Logger *slog.Logger
}

// EmbeddedBroker is an in-process MQTT broker (mochi-mqtt): the standalone service's default, and
// the broker of the tests. Every client may connect and use every topic; keep it on loopback or a
// Unix socket.
type EmbeddedBroker struct {
	srv    *mqtt.Server
	url    string
	addr   string
	socket string
}

// StartEmbeddedBroker starts the broker and returns once it accepts connections.
func StartEmbeddedBroker(opts EmbeddedOptions) (*EmbeddedBroker, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv := mqtt.New(&mqtt.Options{
		InlineClient: false,
		// A packet over MaximumPacketSize is refused from its fixed header, before its body is
		// read, and its sender is disconnected.
		Capabilities: embeddedCapabilities(),
		Logger:       slog.New(minLevel{logger.Handler(), slog.LevelError}),
	})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		return nil, err
	}
	if err := srv.AddHook(newPacketIDs(), nil); err != nil {
		return nil, err
	}
	if err := srv.AddHook(&memoryGuard{log: logger}, nil); err != nil {
		return nil, err
	}
	b := &EmbeddedBroker{srv: srv}
	if opts.Socket != "" {
		path, err := filepath.Abs(opts.Socket)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("embedded broker: %s exists and is not a socket", path)
		}
		l := listeners.NewUnixSock(listeners.Config{ID: "unix", Address: path})
		if err := srv.AddListener(l); err != nil {
			return nil, fmt.Errorf("embedded broker: listen on %s: %w", path, err)
		}
		if err := os.Chmod(path, 0o660); err != nil {
			_ = srv.Close()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
		b.socket, b.addr, b.url = path, path, UnixURL(path)
	} else {
		addr := opts.Listen
		if addr == "" {
			addr = DefaultListen
		}
		l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr, TLSConfig: opts.TLS})
		if err := srv.AddListener(l); err != nil {
			return nil, fmt.Errorf("embedded broker: listen on %s: %w", addr, err)
		}
		b.addr = l.Address()
		scheme := "tcp://"
		if opts.TLS != nil {
			scheme = "ssl://"
		}
		b.url = scheme + b.addr
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return b, nil
}

// URL is the broker's client URL (tcp://127.0.0.1:PORT, ssl://... or unix:///path).
func (b *EmbeddedBroker) URL() string { return b.url }

// Addr is the address the broker listens on: host:port or the socket path.
func (b *EmbeddedBroker) Addr() string { return b.addr }

// Close stops the broker, disconnects its clients and removes its socket file.
func (b *EmbeddedBroker) Close() error {
	// mochi v2.7.9's Server.Close disconnects each listener's clients through
	// Clients.GetByListener, which read-locks the client map and, holding it, read-locks it
	// again (Clients.Len). A client that goes away at that moment takes the write lock in
	// Clients.Delete between the two, and since Go's RWMutex lets no reader past a waiting
	// writer, both wait for ever: Close hangs. Closing the listeners first, with a closer that
	// takes the lock once (Clients.GetAll), leaves Server.Close nothing to do there: a listener
	// runs its closer only once.
	b.srv.Listeners.CloseAll(b.disconnectClients)
	err := b.srv.Close()
	if b.socket != "" {
		_ = os.Remove(b.socket)
	}
	return err
}

// disconnectClients disconnects the clients of one listener, as mochi's own closer does.
func (b *EmbeddedBroker) disconnectClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// allowAll lets every client connect and use every topic (mochi refuses all without an auth
// hook). The broker is meant for loopback and Unix sockets.
type allowAll struct{ mqtt.HookBase }

func (*allowAll) ID() string { return "allow-all" }

func (*allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (*allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (*allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// memoryGuard stops the embedded broker from queueing large messages while the process (broker and
// service share it) is at its memory budget: the packet has been read, but it is neither queued
// for subscribers nor retained, so what a flood of large messages costs is bounded by the budget
// and the packets being read at that moment. The publisher's QoS flow completes as usual.
type memoryGuard struct {
	mqtt.HookBase
	log *slog.Logger
}

func (*memoryGuard) ID() string { return "evsesec-memory-guard" }

func (*memoryGuard) Provides(b byte) bool { return b == mqtt.OnPublish }

func (g *memoryGuard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if len(pk.Payload) > largeMessageBytes && overBudget() {
		dropped.note(g.log, pk.TopicName, len(pk.Payload), "broker: large message while the service's memory is at its budget")
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}

// minLevel drops records below a level (the broker logs every connection at Info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// hostOnly reports whether s has no scheme; such a broker argument is taken as host:port.
func hostOnly(s string) bool { return !strings.Contains(s, "://") }

// ParseBrokerURL accepts a URL or a bare host:port (taken as tcp://host:port).
func ParseBrokerURL(s string) string {
	if hostOnly(s) {
		return "tcp://" + s
	}
	return s
}
