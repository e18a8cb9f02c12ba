package everest

// Security properties of the MQTT side (SECURITY.md): the embedded broker listens on loopback
// unless told otherwise, and a connection to an external broker logs in with the configured user
// name and password (a broker that checks them refuses a wrong password) and never shows the
// password in its description.

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestSecurityEmbeddedBrokerLoopbackByDefault(t *testing.T) {
	host, _, err := net.SplitHostPort(DefaultListen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("DefaultListen %s is not a loopback address", DefaultListen)
	}
	b, err := StartEmbeddedBroker(EmbeddedOptions{})
	if err != nil {
		t.Skipf("port of %s in use (%v); the constant was checked", DefaultListen, err)
	}
	defer b.Close()
	host, _, err = net.SplitHostPort(b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Errorf("the embedded broker listens on %s, not on loopback", b.Addr())
	}
}

// securityLogin lets in only the clients that log in as user with pass.
type securityLogin struct {
	mqtt.HookBase
	user, pass string
}

func (*securityLogin) ID() string { return "security-login" }

func (*securityLogin) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *securityLogin) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	return string(pk.Connect.Username) == h.user && string(pk.Connect.Password) == h.pass
}

func (*securityLogin) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// securityAuthBroker is a broker that lets in only user/pass.
func securityAuthBroker(t *testing.T, user, pass string) string {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(&securityLogin{user: user, pass: pass}, nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "tcp://" + l.Address()
}

func TestSecurityBrokerLogin(t *testing.T) {
	const user, pass = "evse-security", "mqtt-Pa55-4e1f"
	url := securityAuthBroker(t, user, pass)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewCaller(ctx, CallerOptions{Broker: Broker{URL: url, Username: user, Password: pass}, ConnectTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("login with the right password: %v", err)
	}
	c.Close()
	for _, b := range []Broker{{URL: url, Username: user, Password: "wrong"}, {URL: url}} {
		c, err := NewCaller(ctx, CallerOptions{Broker: b, ConnectTimeout: 2 * time.Second})
		if err == nil {
			c.Close()
			t.Errorf("connected to a broker that checks passwords with user %q and a wrong or no password", b.Username)
			continue
		}
		if strings.Contains(err.Error(), pass) || strings.Contains(err.Error(), "wrong") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
	if s := (Broker{URL: "ssl://" + user + ":" + pass + "@broker:8883", Username: user, Password: pass}).String(); strings.Contains(s, pass) {
		t.Errorf("Broker.String shows the password: %s", s)
	}
}
