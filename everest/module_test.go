package everest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
)

// A module started before the manager asks for its config until it is answered, and takes the
// etc dir from the manager's settings when they come.
func TestModuleWaitsForManager(t *testing.T) {
	b := everesttest.StartBroker(t)
	m := startModule(t, b.URL(), moduleOptions{noManager: true, installPrefix: "/nonexistent/prefix", configRetry: 150 * time.Millisecond})
	time.Sleep(500 * time.Millisecond) // a few unanswered requests
	select {
	case <-m.runner.Ready():
		t.Fatal("ready without a config")
	default:
	}
	etc := everest.EtcDirOf(m.prefix) // where the PKI is; the install prefix points elsewhere
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: b.URL(), EtcDir: etc})
	mgr.WaitReady(t, 10*time.Second)
	m.waitReady(t)

	c := everesttest.NewCaller(t, b.URL(), m.topics, "ocpp")
	r, err := c.Call("is_ca_certificate_installed", map[string]any{"certificate_type": "CSMS"})
	if err != nil || string(r.Retval) != "true" {
		t.Errorf("is_ca_certificate_installed: %s, %v (the store must be under the settings' etc_dir)", r.Retval, err)
	}
}

// A module whose store cannot be opened still reports ready and answers every call with the
// reason, instead of exiting (which would take EVerest down).
func TestModuleWithBadConfigStaysUp(t *testing.T) {
	b := everesttest.StartBroker(t)
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: b.URL(), Params: map[string]any{
		"csms_ca_bundle": "client/csms", "csms_leaf_cert_directory": "client/csms", // the same path twice: refused
	}})
	r := everest.NewRunner(everest.Options{Broker: everest.Broker{URL: b.URL()}, InstallPrefix: t.TempDir(), Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	st := &moduleStore{r: r}
	go func() { done <- r.RunModule(ctx, st.open) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunModule: %v", err)
		}
		st.close()
	}()
	mgr.WaitReady(t, 10*time.Second)
	c := everesttest.NewCaller(t, b.URL(), r.Topics(), "ocpp")
	reply, err := c.Call("get_verify_file", map[string]any{"certificate_type": "CSMS"})
	if err != nil {
		t.Fatal(err)
	}
	if reply.Error == nil || reply.Error.Type != everest.HandlerException || !strings.Contains(reply.Error.Message, "csms") {
		t.Errorf("reply %s, want a HandlerException naming the config problem", reply.Payload)
	}
}

// The broker unreachable at start is an error (the process exits non-zero with it).
func TestBrokerUnreachableAtStart(t *testing.T) {
	url := fmt.Sprintf("tcp://127.0.0.1:%d", everesttest.FreePort(t))
	var log syncBuffer
	r := everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, Logger: bufferLogger(&log), ConnectTimeout: time.Second})
	err := r.RunModule(context.Background(), func(context.Context, everest.ModuleConfig) (everest.Handler, error) {
		t.Error("setup called without a broker")
		return nil, errors.New("no")
	})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("RunModule = %v, want an error naming the broker", err)
	}
	if strings.Contains(log.String(), "retrying") {
		t.Errorf("without a start timeout the runner retried:\n%s", log.String())
	}
	// With a start timeout it keeps trying, then gives up.
	var retried syncBuffer
	r = everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, Logger: bufferLogger(&retried), StartTimeout: 1500 * time.Millisecond})
	if err := r.Serve(context.Background(), stubHandler{}); err == nil {
		t.Error("Serve without a broker: no error")
	}
	if !strings.Contains(retried.String(), "MQTT broker not reachable yet; retrying") {
		t.Errorf("with a start timeout the runner did not retry:\n%s", retried.String())
	}
	// Cancelled while waiting for the broker: a clean stop.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	r = everest.NewRunner(everest.Options{Broker: everest.Broker{URL: url}, Logger: testLogger(), StartTimeout: time.Minute})
	if err := r.Serve(ctx, stubHandler{}); err != nil {
		t.Errorf("Serve cancelled while connecting = %v, want nil", err)
	}
}

// The broker goes away and comes back on the same address: the module reconnects, subscribes
// again and serves calls.
func TestModuleReconnects(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", everesttest.FreePort(t))
	b1, err := everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	// The broker that comes back is closed after the module and its manager have stopped
	// (cleanups run last in, first out): closed under them, they would still be reconnecting.
	var b2 *everest.EmbeddedBroker
	t.Cleanup(func() {
		if b2 != nil {
			_ = b2.Close()
		}
	})
	url := b1.URL()
	m := startModule(t, url, moduleOptions{})
	m.waitReady(t)
	if err := b1.Close(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if b2, err = everest.StartEmbeddedBroker(everest.EmbeddedOptions{Listen: addr}); err != nil {
		t.Fatal(err)
	}

	c := everesttest.NewCaller(t, url, m.topics, "ocpp")
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := c.CallWithin("is_ca_certificate_installed", map[string]any{"certificate_type": "V2G"}, time.Second)
		if err == nil && string(r.Retval) == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the broker came back: %v", err)
		}
	}
	// The certificate_store_update variable flows again too.
	args := map[string]any{"certificate": pemOf(m.tree.pki.MOSubCA1.Cert), "certificate_type": "MO"}
	if r, err := c.Call("install_ca_certificate", args); err != nil || string(r.Retval) != `"Accepted"` {
		t.Fatalf("install: %s, %v", r.Retval, err)
	}
	if v, err := c.WaitVar(5 * time.Second); err != nil || string(v.Value) != `{"operation":"Installed","ca_certificate_type":"MO"}` {
		t.Errorf("var %s, %v", v.Value, err)
	}
	// The manager is back too before the test ends, so that it disconnects cleanly.
	m.manager.WaitResubscribed(t, 15*time.Second)
}

// stubHandler answers every command with its name, or as the command says.
type stubHandler struct {
	slow        chan struct{} // "slow" waits for it
	slowRunning chan struct{} // "slow" sends on it, if set, when it starts waiting
}

func (h stubHandler) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	switch name {
	case "slow":
		if h.slowRunning != nil {
			h.slowRunning <- struct{}{}
		}
		select {
		case <-h.slow:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "panic":
		panic("handler bug")
	case "invalid":
		return json.RawMessage("{not json"), nil
	case "not_ready":
		return nil, &everest.CmdError{Type: everest.NotReady, Message: "later"}
	case "nothing":
		return nil, nil
	case "echo":
		return args, nil
	}
	return json.Marshal(name)
}
