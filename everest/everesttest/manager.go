package everesttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/everest"
)

// ManagerOptions configure a fake manager.
type ManagerOptions struct {
	// URL is the broker.
	URL string
	// Prefix is the everest prefix (default "everest/").
	Prefix string
	// ModuleID and ModuleName name the module the manager configures (defaults "evse_security",
	// "EvseSecurity").
	ModuleID, ModuleName string
	// Params is the module config the manager sends; nil sends the manifest's defaults.
	Params map[string]any
	// EtcDir, when set, is published in the retained settings, as the real manager does.
	EtcDir string
}

// Manager is a fake EVerest manager (framework v0.25 wire): it publishes the retained settings
// and module_names, answers config requests with the module's config in the §1.5 shape, records
// every ModuleReady and answers each with GlobalReady.
type Manager struct {
	t      testing.TB
	opts   ManagerOptions
	topics everest.Topics
	c      paho.Client

	mu           sync.Mutex
	requests     []string
	readies      []string
	readyCh      chan string
	resubscribed chan struct{}
	out          *outbox // what the message callback publishes
	// published is set once the retained definitions are out; config requests are answered
	// only from then on.
	published atomic.Bool
}

// StartManager connects the fake manager; it disconnects when the test ends.
func StartManager(t testing.TB, opts ManagerOptions) *Manager {
	t.Helper()
	if opts.ModuleName == "" {
		opts.ModuleName = "EvseSecurity"
	}
	if opts.Params == nil {
		opts.Params = ManifestDefaults(t)
	}
	m := &Manager{t: t, opts: opts, topics: everest.NewTopics(opts.Prefix, opts.ModuleID, ""), readyCh: make(chan string, 100),
		resubscribed: make(chan struct{}, 100), out: newOutbox()}
	po := paho.NewClientOptions().AddBroker(opts.URL).SetClientID("fake_manager_" + fmt.Sprint(time.Now().UnixNano())).
		SetProtocolVersion(4).SetAutoReconnect(true).SetMaxReconnectInterval(500 * time.Millisecond).
		SetConnectTimeout(5 * time.Second)
	filters := map[string]byte{m.topics.ConfigRequest(): 2, m.topics.ModuleReady(): 2}
	m.c = connectResubscribing(t, "fake manager", po, filters, m.onMessage, func() {
		select {
		case m.resubscribed <- struct{}{}:
		default:
		}
	})
	m.publishDefinitions()
	t.Cleanup(m.Close)
	return m
}

// publishDefinitions publishes the retained settings and module_names, as the manager does at
// every start.
func (m *Manager) publishDefinitions() {
	if m.opts.EtcDir != "" {
		settings := fmt.Sprintf(`{"msg_type":"GetConfigResponse","data":{"prefix":"/usr","etc_dir":%q,"data_dir":"/usr/share/everest","modules_dir":"/usr/libexec/everest/modules","telemetry_prefix":"everest-telemetry/","telemetry_enabled":false,"validate_schema":false,"forward_exceptions":false}}`, m.opts.EtcDir)
		m.publish(m.topics.Settings(), []byte(settings), true)
	}
	names := fmt.Sprintf(`{"msg_type":"GetConfigResponse","data":{%q:%q}}`, m.topics.ModuleID, m.opts.ModuleName)
	m.publish(m.topics.ModuleNames(), []byte(names), true)
	m.published.Store(true)
}

func (m *Manager) publish(topic string, payload []byte, retain bool) {
	tok := m.c.Publish(topic, 2, retain, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		m.t.Errorf("fake manager: publish %s: %v", topic, tok.Error())
	}
}

func (m *Manager) onMessage(c paho.Client, msg paho.Message) {
	payload := string(msg.Payload())
	switch msg.Topic() {
	case m.topics.ConfigRequest():
		m.mu.Lock()
		m.requests = append(m.requests, payload)
		m.mu.Unlock()
		var req struct {
			MsgType string `json:"msg_type"`
			Data    struct {
				Type    string `json:"type"`
				Origin  string `json:"origin"`
				Request struct {
					Type string `json:"type"`
				} `json:"request"`
			} `json:"data"`
		}
		if err := json.Unmarshal(msg.Payload(), &req); err != nil || req.MsgType != "GetConfig" || req.Data.Type != "Get" || req.Data.Request.Type != "Module" {
			m.t.Errorf("fake manager: bad config request %s", payload)
			return
		}
		if req.Data.Origin != m.topics.ModuleID {
			return // another module's
		}
		if !m.published.Load() {
			// A module that started before the manager asks before the retained settings
			// are out; answered now, it would have its config before the settings' etc_dir.
			// Unanswered, it asks again, and gets the settings first.
			return
		}
		m.out.publish(c, m.topics.ConfigResponse(), 2, false, m.configResponse())
	case m.topics.ModuleReady():
		m.mu.Lock()
		m.readies = append(m.readies, payload)
		m.mu.Unlock()
		m.readyCh <- payload
		m.out.publish(c, m.topics.GlobalReady(), 2, false, []byte(`{"msg_type":"GlobalReady","data":true}`))
	}
}

// configResponse is the manager's answer to the module's GetConfig (protocol note §1.5).
func (m *Manager) configResponse() []byte {
	type characteristics struct {
		Datatype   string `json:"datatype"`
		Mutability string `json:"mutability"`
	}
	type param struct {
		Name            string          `json:"name"`
		Value           any             `json:"value"`
		Characteristics characteristics `json:"characteristics"`
	}
	params := []param{}
	for _, k := range slices.Sorted(maps.Keys(m.opts.Params)) {
		v := m.opts.Params[k]
		params = append(params, param{Name: k, Value: v, Characteristics: characteristics{Datatype: datatypeOf(v), Mutability: "ReadOnly"}})
	}
	moduleConfig := map[string]any{
		"standalone": false, "module_name": m.opts.ModuleName, "module_id": m.topics.ModuleID,
		"configuration_parameters": map[string]any{"!module": params, "main": []any{}},
		"telemetry_enabled":        false, "connections": map[string]any{}, "mapping": nil, "access": nil,
	}
	data := map[string]any{
		"status": "Ok", "status_info": "", "type": "Get",
		"response": map[string]any{"type": "Module", "data": map[string]any{
			"module_config": moduleConfig, "mappings": map[string]any{m.topics.ModuleID: nil},
		}},
	}
	out, err := json.Marshal(map[string]any{"msg_type": "GetConfigResponse", "data": data})
	if err != nil {
		panic(err)
	}
	return out
}

// datatypeOf is the manifest datatype of a config value, as every generation's manager names it
// in the parameter's characteristics.
func datatypeOf(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case int, int64:
		return "integer"
	case float64:
		return "number"
	}
	return "string"
}

// WaitReady waits for the next ModuleReady and returns its payload.
func (m *Manager) WaitReady(t testing.TB, d time.Duration) string {
	t.Helper()
	select {
	case p := <-m.readyCh:
		return p
	case <-time.After(d):
		t.Fatalf("fake manager: no ModuleReady within %v (config requests: %d)", d, len(m.ConfigRequests()))
		return ""
	}
}

// WaitReadies waits until the manager has received n ModuleReady messages in all. Unlike
// WaitReady it counts, so a ready received earlier and not waited for (the module reports ready
// again after a reconnection) is not taken for the next one.
func (m *Manager) WaitReadies(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(m.Readies()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fake manager: %d ModuleReady messages within %v, want %d", len(m.Readies()), d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ConfigRequests returns the config requests received so far.
func (m *Manager) ConfigRequests() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.requests...)
}

// Readies returns the ModuleReady messages received so far.
func (m *Manager) Readies() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.readies...)
}

// WaitResubscribed waits until the manager, having lost the broker, has connected again and
// made its subscriptions again (once per reconnection).
func (m *Manager) WaitResubscribed(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-m.resubscribed:
	case <-time.After(d):
		t.Fatalf("fake manager: not subscribed again within %v", d)
	}
}

// Restart acts out a manager restart while the module keeps running: the retained definitions
// are published afresh.
func (m *Manager) Restart() { m.publishDefinitions() }

// Close clears the retained topics, as the manager does on exit, and disconnects.
func (m *Manager) Close() {
	m.out.close()
	if !m.c.IsConnectionOpen() {
		m.c.Disconnect(0)
		return
	}
	for _, topic := range []string{m.topics.Settings(), m.topics.ModuleNames()} {
		m.c.Publish(topic, 2, true, []byte{}).WaitTimeout(2 * time.Second)
	}
	m.c.Disconnect(100)
}
