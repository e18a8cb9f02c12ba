package everest_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
)

// service is a runner in standalone mode.
type service struct {
	runner *everest.Runner
	cancel context.CancelFunc
	done   chan error
}

func startService(t *testing.T, opts everest.Options, h everest.Handler) *service {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	s := &service{runner: everest.NewRunner(opts), done: make(chan error, 1)}
	if h == nil {
		root := filepath.Join(t.TempDir(), "certs")
		writePKI(t, root)
		st, err := store.Open(store.DefaultConfig(root), store.Options{OnEvent: storeEvents(s.runner)})
		if err != nil {
			t.Fatal(err)
		}
		h = api.NewDispatcher(st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- s.runner.Serve(ctx, h) }()
	t.Cleanup(func() { s.stop(t) })
	select {
	case <-s.runner.Ready():
	case err := <-s.done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("service not ready")
	}
	return s
}

func (s *service) stop(t testing.TB) {
	s.cancel()
	select {
	case err, ok := <-s.done:
		if ok && err != nil {
			t.Errorf("Serve: %v", err)
		}
		if ok {
			close(s.done)
		}
	case <-time.After(15 * time.Second):
		t.Error("Serve did not return")
	}
}

// closeAfterClients closes b when the test ends, after the services and callers started later
// have stopped (cleanups run last in, first out). A broker closed under a client leaves it
// reconnecting, and its reconnection goroutines outlive the test until their next attempt.
func closeAfterClients(t *testing.T, b *everest.EmbeddedBroker) {
	t.Cleanup(func() { _ = b.Close() })
}

// The standalone service on the embedded broker's Unix socket, called with the Caller of
// `evsesec call --broker`.
func TestServeUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mqtt.sock")
	b, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	closeAfterClients(t, b)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket %v, %v; want mode 0660", fi, err)
	}
	startService(t, everest.Options{Broker: everest.Broker{URL: b.URL()}, ModuleID: "sec", Prefix: "ev"}, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: everest.Broker{URL: b.URL()}, ModuleID: "sec", Prefix: "ev/"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Call(ctx, "is_ca_certificate_installed", json.RawMessage(`{"certificate_type":"MO"}`))
	if err != nil || string(got) != "true" {
		t.Errorf("call: %s, %v", got, err)
	}
	got, err = c.Call(ctx, "update_ocsp_cache", json.RawMessage(`{"certificate_hash_data":{"hash_algorithm":"SHA256","issuer_name_hash":"00","issuer_key_hash":"00","serial_number":"1"},"ocsp_response":"AA=="}`))
	if err != nil || string(got) != "null" {
		t.Errorf("command without a result: %s, %v", got, err)
	}
	_, err = c.Call(ctx, "is_ca_certificate_installed", json.RawMessage(`{"certificate_type":"XX"}`))
	var ce *everest.CmdError
	if !errors.As(err, &ce) || ce.Type != everest.SchemaValidationError {
		t.Errorf("bad argument: %v, want a SchemaValidationError", err)
	}
	// A second broker on the same socket path is refused if the path is not a socket.
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Socket: file}); err == nil {
		t.Error("a regular file was taken as the socket path")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the file was removed: %v", err)
	}
}

// An external broker over TLS with a client certificate (the embedded broker plays it).
func TestServeTLSBroker(t *testing.T) {
	dir := t.TempDir()
	tree := writePKI(t, filepath.Join(dir, "certs"))
	p, l := tree.pki, tree.layout
	pool := x509.NewCertPool()
	pool.AddCert(p.CSMSRoot.Cert)
	serverTLS := &tls.Config{
		Certificates: []tls.Certificate{p.CSMSServer.TLSCertificate()},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	b, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: "127.0.0.1:0", TLS: serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	closeAfterClients(t, b)
	if !strings.HasPrefix(b.URL(), "ssl://127.0.0.1:") {
		t.Fatalf("URL %s", b.URL())
	}
	clientTLS, err := everest.TLSConfig(l.CSMSRootCert, l.CSMSLeafCert, l.CSMSLeafKey)
	if err != nil {
		t.Fatal(err)
	}
	startService(t, everest.Options{Broker: everest.Broker{URL: b.URL(), TLS: clientTLS, Username: "u", Password: "p"}}, stubHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: everest.Broker{URL: b.URL(), TLS: clientTLS}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Call(ctx, "hello", nil); err != nil || string(got) != `"hello"` {
		t.Errorf("call over TLS: %s, %v", got, err)
	}
	// Without a client certificate the broker refuses.
	noCert, err := everest.TLSConfig(l.CSMSRootCert, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := everest.NewCaller(ctx, everest.CallerOptions{Broker: everest.Broker{URL: b.URL(), TLS: noCert}, ConnectTimeout: 2 * time.Second}); err == nil {
		c.Close()
		t.Error("connected without a client certificate")
	}
}

func TestBrokerSettings(t *testing.T) {
	for _, tc := range []struct {
		b   everest.Broker
		bad bool
	}{
		{everest.Broker{URL: "tcp://127.0.0.1:1883"}, false},
		{everest.Broker{URL: "unix:///run/mqtt.sock"}, false},
		{everest.Broker{URL: "mqtts://broker:8883", TLS: &tls.Config{}}, false},
		{everest.Broker{URL: "tcp://127.0.0.1:1883", TLS: &tls.Config{}}, true},
		{everest.Broker{URL: "http://127.0.0.1"}, true},
		{everest.Broker{URL: "tcp://"}, true},
	} {
		r := everest.NewRunner(everest.Options{Broker: tc.b, ConnectTimeout: 200 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := r.Serve(ctx, stubHandler{})
		cancel()
		if bad := err != nil && !strings.Contains(err.Error(), "connect to MQTT broker"); bad != tc.bad {
			t.Errorf("%+v: %v", tc.b, err)
		}
	}
	if got := (everest.Broker{URL: "tcp://user:secret@host:1"}).String(); strings.Contains(got, "secret") {
		t.Errorf("String shows the password: %s", got)
	}
	if got := everest.ParseBrokerURL("127.0.0.1:1883"); got != "tcp://127.0.0.1:1883" {
		t.Errorf("ParseBrokerURL = %s", got)
	}
	if _, err := everest.TLSConfig("", "cert.pem", ""); err == nil {
		t.Error("TLSConfig with a certificate and no key: no error")
	}
	if _, err := everest.TLSConfig(filepath.Join(t.TempDir(), "missing.pem"), "", ""); err == nil {
		t.Error("TLSConfig with a missing CA file: no error")
	}
	if c, err := everest.TLSConfig("", "", ""); c != nil || err != nil {
		t.Errorf("TLSConfig() = %v, %v", c, err)
	}
}

// One slow call (a big firmware file) must not hold up the others, and the number of calls
// running at once is bounded.
func TestServeConcurrency(t *testing.T) {
	b := everesttest.StartBroker(t)
	h := stubHandler{slow: make(chan struct{}), slowRunning: make(chan struct{}, 1)}
	s := startService(t, everest.Options{Broker: everest.Broker{URL: b.URL()}, MaxConcurrentCalls: 4}, h)
	c := everesttest.NewCaller(t, b.URL(), s.runner.Topics(), "ocpp")

	slowDone := make(chan error, 1)
	go func() {
		r, err := c.Call("slow", map[string]any{})
		if err == nil && string(r.Retval) != `"slow"` {
			err = errors.New(string(r.Payload))
		}
		slowDone <- err
	}()
	waitSlowRunning(t, h, slowDone)
	for i := range 50 {
		if r, err := c.CallWithin("get_leaf_certificate_info", map[string]any{}, 5*time.Second); err != nil || string(r.Retval) != `"get_leaf_certificate_info"` {
			t.Fatalf("call %d while a slow call runs: %s, %v", i, r.Retval, err)
		}
	}
	close(h.slow)
	if err := <-slowDone; err != nil {
		t.Errorf("slow call: %v", err)
	}

	// Bounded: 40 calls at once, 4 run together and never more.
	var running, peak atomic.Int32
	counting := countingHandler{running: &running, peak: &peak, want: 4, reached: make(chan struct{}), once: new(sync.Once)}
	b2 := everesttest.StartBroker(t)
	s2 := startService(t, everest.Options{Broker: everest.Broker{URL: b2.URL()}, MaxConcurrentCalls: 4}, counting)
	c2 := everesttest.NewCaller(t, b2.URL(), s2.runner.Topics(), "ocpp")
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := c2.Call("count", map[string]any{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 4 {
		t.Errorf("peak of %d calls at once, want 4 (MaxConcurrentCalls)", p)
	}
}

// waitSlowRunning waits until h's "slow" call has reached the handler.
func waitSlowRunning(t *testing.T, h stubHandler, done <-chan error) {
	t.Helper()
	select {
	case <-h.slowRunning:
	case err := <-done:
		t.Fatalf("the slow call ended before it ran: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the slow call did not reach the handler")
	}
}

// countingHandler records the most calls running at once in peak. Calls wait until want of them
// run together, so that the peak does not depend on how fast the calls arrive: it is want when
// the runner lets want calls run at once and never more.
type countingHandler struct {
	running, peak *atomic.Int32
	want          int32
	reached       chan struct{} // closed when want calls run at once
	once          *sync.Once
}

func (h countingHandler) Call(ctx context.Context, _ string, _ json.RawMessage) (json.RawMessage, error) {
	n := h.running.Add(1)
	defer h.running.Add(-1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if n >= h.want {
		h.once.Do(func() { close(h.reached) })
	}
	select {
	case <-h.reached:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return json.RawMessage("true"), nil
}

// Handler failures become the framework's error replies; none takes the service down.
func TestServeHandlerErrors(t *testing.T) {
	b := everesttest.StartBroker(t)
	s := startService(t, everest.Options{Broker: everest.Broker{URL: b.URL()}}, stubHandler{})
	c := everesttest.NewCaller(t, b.URL(), s.runner.Topics(), "ocpp")
	for cmd, want := range map[string]everest.ErrorType{
		"panic":     everest.HandlerException,
		"invalid":   everest.HandlerException,
		"not_ready": everest.NotReady,
	} {
		r, err := c.Call(cmd, map[string]any{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Error == nil || r.Error.Type != want {
			t.Errorf("%s: %s, want %s", cmd, r.Payload, want)
		}
	}
	if r, err := c.Call("nothing", map[string]any{}); err != nil || string(r.Retval) != "null" {
		t.Errorf("no result: %s, %v", r.Payload, err)
	}
	if r, err := c.Call("echo", json.RawMessage(`{"a":[1,2,{"b":null}]}`)); err != nil || string(r.Retval) != `{"a":[1,2,{"b":null}]}` {
		t.Errorf("echo: %s, %v", r.Payload, err)
	}
}

// At shutdown a running call still gets its result; Serve returns nil.
func TestServeShutdownFinishesCalls(t *testing.T) {
	b := everesttest.StartBroker(t)
	h := stubHandler{slow: make(chan struct{}), slowRunning: make(chan struct{}, 1)}
	s := startService(t, everest.Options{Broker: everest.Broker{URL: b.URL()}, ShutdownGrace: 5 * time.Second}, h)
	c := everesttest.NewCaller(t, b.URL(), s.runner.Topics(), "ocpp")
	got := make(chan error, 1)
	go func() {
		r, err := c.Call("slow", map[string]any{})
		if err == nil && string(r.Retval) != `"slow"` {
			err = errors.New(string(r.Payload))
		}
		got <- err
	}()
	waitSlowRunning(t, h, got)
	s.cancel()
	// Shutdown has begun once a new call is refused with Shutdown; the slow call is still running.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := c.CallWithin("nothing", map[string]any{}, 5*time.Second)
		if err == nil && r.Error != nil && r.Error.Type == everest.Shutdown {
			break
		}
		if err == nil && r.Error != nil {
			t.Fatalf("a call during shutdown: %s, want a Shutdown error or a result", r.Payload)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call refused with Shutdown after the cancel: %s, %v", r.Payload, err)
		}
	}
	close(h.slow)
	if err := <-got; err != nil {
		t.Errorf("call running at shutdown: %v", err)
	}
	s.stop(t)
}
