package everesttest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/everest"
)

// CallTimeout is how long a fake caller waits for a result (the framework waits 300 s).
const CallTimeout = 20 * time.Second

// Reply is one CmdResult as a fake caller received it.
type Reply struct {
	// Topic is the topic the result came on.
	Topic string
	// Payload is the whole message.
	Payload []byte
	// Retval is the result; nil when the reply is an error.
	Retval json.RawMessage
	// Error is the error of an error reply.
	Error *everest.CmdError
}

// VarMsg is one variable message as a fake caller received it.
type VarMsg struct {
	Topic   string
	Payload []byte
	// Value is the variable's value (data.data).
	Value json.RawMessage
}

// Caller is a fake calling module (OCPP, EvseV2G, ...): it publishes Cmd messages the way the
// framework does and checks the shape of every CmdResult: its topic, msg_type, type "result", the
// echoed id, the provider's origin, and exactly one of retval and a well-formed error.
type Caller struct {
	Origin   string
	provider everest.Topics
	c        paho.Client

	mu      sync.Mutex
	waiting map[string]chan Reply
	stray   []string
	vars    chan VarMsg
}

// NewCaller connects a fake caller with module id origin; it subscribes its result topics and
// the provider's variables, and disconnects when the test ends.
func NewCaller(t testing.TB, url string, provider everest.Topics, origin string) *Caller {
	t.Helper()
	c := &Caller{Origin: origin, provider: provider, waiting: map[string]chan Reply{}, vars: make(chan VarMsg, 1000)}
	po := paho.NewClientOptions().AddBroker(url).SetClientID(origin + "_" + randomHex(4)).SetProtocolVersion(4).
		SetOrderMatters(false).SetConnectTimeout(5 * time.Second).SetAutoReconnect(true).
		SetMaxReconnectInterval(500 * time.Millisecond)
	filters := map[string]byte{
		provider.CmdResponseSubscription(origin): 2,
		provider.Var(everest.StoreUpdateVar):     2,
	}
	c.c = connectSubscribed(t, "fake caller "+origin, po, filters, c.onMessage)
	t.Cleanup(func() { c.c.Disconnect(100) })
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Caller) onMessage(_ paho.Client, m paho.Message) {
	if strings.Contains(m.Topic(), "/var/") {
		var env struct {
			Data struct {
				Data json.RawMessage `json:"data"`
			} `json:"data"`
		}
		_ = json.Unmarshal(m.Payload(), &env)
		c.vars <- VarMsg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Value: env.Data.Data}
		return
	}
	var env struct {
		Data struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		} `json:"data"`
	}
	_ = json.Unmarshal(m.Payload(), &env)
	c.mu.Lock()
	ch, ok := c.waiting[env.Data.Data.ID]
	delete(c.waiting, env.Data.Data.ID)
	if !ok {
		c.stray = append(c.stray, string(m.Payload()))
	}
	c.mu.Unlock()
	if ok {
		ch <- Reply{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...)}
	}
}

// Vars returns the variable messages received.
func (c *Caller) Vars() <-chan VarMsg { return c.vars }

// Stray returns results that matched no call of this caller.
func (c *Caller) Stray() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.stray...)
}

// Call calls cmd with args (marshalled to JSON; a json.RawMessage is sent as it is) and returns
// the checked result. It does not touch the testing.T, so it can run in any goroutine.
func (c *Caller) Call(cmd string, args any) (Reply, error) {
	return c.CallWithin(cmd, args, CallTimeout)
}

// CallWithin is Call waiting at most d for the result.
func (c *Caller) CallWithin(cmd string, args any, d time.Duration) (Reply, error) {
	raw, ok := args.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(args); err != nil {
			return Reply{}, err
		}
	}
	id := newUUID()
	payload := []byte(fmt.Sprintf(`{"msg_type":"Cmd","data":{"id":%q,"args":%s,"origin":%q}}`, id, raw, c.Origin))
	return c.send(cmd, id, payload, d)
}

// Send publishes a raw message to cmd's topic and waits for the result with id.
func (c *Caller) Send(cmd, id string, payload []byte) (Reply, error) {
	return c.send(cmd, id, payload, CallTimeout)
}

func (c *Caller) send(cmd, id string, payload []byte, d time.Duration) (Reply, error) {
	ch := make(chan Reply, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}()
	// Like the framework, the caller does not wait for the broker's acknowledgement before
	// waiting for the result.
	tok := c.c.Publish(c.provider.Cmd(cmd), 2, false, payload)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r, c.check(cmd, id, &r)
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return Reply{}, fmt.Errorf("publish %s: %v", cmd, err)
		}
	case <-timer.C:
		return Reply{}, fmt.Errorf("%s (id %s): no result within %v", cmd, id, d)
	}
	select {
	case r := <-ch:
		return r, c.check(cmd, id, &r)
	case <-timer.C:
		return Reply{}, fmt.Errorf("%s (id %s): no result within %v", cmd, id, d)
	}
}

// check verifies the reply's shape and fills Retval or Error.
func (c *Caller) check(cmd, id string, r *Reply) error {
	if want := c.provider.CmdResponse(cmd, c.Origin); r.Topic != want {
		return fmt.Errorf("%s: result on %s, want %s", cmd, r.Topic, want)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(r.Payload, &env); err != nil {
		return fmt.Errorf("%s: result is not a JSON object: %s", cmd, r.Payload)
	}
	if err := keys(env, "msg_type", "data"); err != nil {
		return fmt.Errorf("%s: envelope: %v: %s", cmd, err, r.Payload)
	}
	if string(env["msg_type"]) != `"CmdResult"` {
		return fmt.Errorf("%s: msg_type %s", cmd, env["msg_type"])
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &outer); err != nil || keys(outer, "type", "data") != nil || string(outer["type"]) != `"result"` {
		return fmt.Errorf("%s: CmdResult data must be {type:\"result\", data}: %s", cmd, r.Payload)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(outer["data"], &inner); err != nil {
		return fmt.Errorf("%s: inner data: %v", cmd, err)
	}
	if string(inner["id"]) != fmt.Sprintf("%q", id) {
		return fmt.Errorf("%s: id %s, want %q", cmd, inner["id"], id)
	}
	if string(inner["origin"]) != fmt.Sprintf("%q", c.provider.ModuleID) {
		return fmt.Errorf("%s: origin %s, want %q", cmd, inner["origin"], c.provider.ModuleID)
	}
	retval, hasRet := inner["retval"]
	errv, hasErr := inner["error"]
	switch {
	case hasRet && !hasErr:
		if keys(inner, "id", "retval", "origin") != nil {
			return fmt.Errorf("%s: result fields: %s", cmd, outer["data"])
		}
		r.Retval = retval
	case hasErr && !hasRet:
		if keys(inner, "id", "origin", "error") != nil {
			return fmt.Errorf("%s: error result fields: %s", cmd, outer["data"])
		}
		var em map[string]json.RawMessage
		if err := json.Unmarshal(errv, &em); err != nil || keys(em, "__everest__error_type", "__everest__error_msg") != nil {
			return fmt.Errorf("%s: error must have exactly __everest__error_type and __everest__error_msg: %s", cmd, errv)
		}
		var ce everest.CmdError
		if err := json.Unmarshal(errv, &ce); err != nil {
			return err
		}
		switch ce.Type {
		case everest.MessageParsingError, everest.SchemaValidationError, everest.HandlerException, everest.CmdTimeout, everest.Shutdown, everest.NotReady:
		default:
			return fmt.Errorf("%s: unknown error type %q", cmd, ce.Type)
		}
		r.Error = &ce
	default:
		return fmt.Errorf("%s: want exactly one of retval and error: %s", cmd, outer["data"])
	}
	return nil
}

// keys checks that m has exactly the given keys.
func keys(m map[string]json.RawMessage, want ...string) error {
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return fmt.Errorf("keys %v, want %v", got, want)
	}
	return nil
}

// WaitVar waits for the next variable message.
func (c *Caller) WaitVar(d time.Duration) (VarMsg, error) {
	select {
	case v := <-c.vars:
		return v, nil
	case <-time.After(d):
		return VarMsg{}, errors.New("no variable published")
	}
}

// DrainVars discards variable messages already received.
func (c *Caller) DrainVars() {
	for {
		select {
		case <-c.vars:
		default:
			return
		}
	}
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// Compact returns the compact form of a JSON text, for comparisons.
func Compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}
