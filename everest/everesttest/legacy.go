package everesttest

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/evsesec/evsesec/api"
)

// Framework releases a LegacyManager can act out (the tag of everest-framework whose manager
// and module loader it follows).
const (
	Framework024 = "v0.24.0" // everest-core 2025.10.0; v0.22 and v0.23 are the same on the wire
	Framework022 = "v0.22.3" // everest-core 2025.7.0; like v0.24 but the error result keys differ
	Framework021 = "v0.21.1" // everest-core 2025.5.0
	Framework020 = "v0.20.3" // everest-core 2025.1.0 to 2025.4.1
	Framework019 = "v0.19.1" // everest-core 2024.11.0
	Framework017 = "v0.17.2" // everest-core 2024.9.0; v0.18 is the same on the wire
)

// LegacyManagerOptions configure a LegacyManager.
type LegacyManagerOptions struct {
	// URL is the broker; Prefix the everest prefix (default "everest/").
	URL, Prefix string
	// Framework is the framework tag acted out (Framework024, ...).
	Framework string
	// ModuleID and ModuleName name the module (defaults "evse_security", "EvseSecurity").
	ModuleID, ModuleName string
	// Params is the module config sent; nil sends the manifest's defaults.
	Params map[string]any
	// EtcDir goes into the retained settings.
	EtcDir string
	// Interface is the evse_security definition published retained under
	// interface_definitions/ (v0.19 on); nil publishes none.
	Interface json.RawMessage
	// NoRetained publishes no retained topics, as when a standalone module starts after they
	// were cleared.
	NoRetained bool
}

// WireMsg is one message as a wire log shows it.
type WireMsg struct {
	Topic    string
	Payload  string
	QoS      byte
	Retained bool
}

// LegacyManager is a fake manager of framework v0.17 to v0.24: the retained topics its
// manager.cpp publishes, the config answer of its generation, the bare-bool ready handler
// (which, like the real one, dies on anything else), global ready and the clearing of the
// retained topics. It also logs every message under the prefix, like mosquitto_sub.
type LegacyManager struct {
	t    testing.TB
	opts LegacyManagerOptions
	c    paho.Client

	mu       sync.Mutex
	log      []WireMsg
	requests []WireMsg // config requests, on any config topic
	readyCh  chan string
	crashed  string
	retained []string
	out      *outbox // what the message callback publishes
}

func (o LegacyManagerOptions) at(tag string) bool { return o.Framework >= tag }

// module is the module's topic level: P modules/<id>, on v0.17 and v0.18 P <id>
// (lib/config.cpp mqtt_module_prefix at those tags).
func (o LegacyManagerOptions) module() string {
	if !o.at(Framework019) {
		return o.Prefix + o.ModuleID
	}
	return o.Prefix + "modules/" + o.ModuleID
}

// StartLegacyManager connects the fake manager and publishes its retained topics; it
// disconnects when the test ends.
func StartLegacyManager(t testing.TB, opts LegacyManagerOptions) *LegacyManager {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = "everest/"
	}
	if opts.ModuleID == "" {
		opts.ModuleID = "evse_security"
	}
	if opts.ModuleName == "" {
		opts.ModuleName = "EvseSecurity"
	}
	if opts.Params == nil {
		opts.Params = ManifestDefaults(t)
	}
	m := &LegacyManager{t: t, opts: opts, readyCh: make(chan string, 100), out: newOutbox()}
	po := paho.NewClientOptions().AddBroker(opts.URL).SetClientID("fake_manager_" + randomHex(4)).
		SetProtocolVersion(4).SetOrderMatters(true).SetConnectTimeout(5 * time.Second)
	m.c = connectSubscribed(t, "fake manager", po, map[string]byte{opts.Prefix + "#": 2}, m.onMessage)
	if !opts.NoRetained {
		m.PublishRetained()
	}
	t.Cleanup(func() {
		m.out.close()
		m.c.Disconnect(100)
	})
	return m
}

// PublishRetained publishes what the generation's manager.cpp publishes retained before it starts
// the modules (the subset a module could read); StartLegacyManager does unless NoRetained.
func (m *LegacyManager) PublishRetained() {
	o := m.opts
	if !o.at(Framework019) {
		return // v0.17, v0.18: the modules read the config file
	}
	settings := fmt.Sprintf(`{"data_dir":"/usr/share/everest","etc_dir":%q,"forward_exceptions":false,"modules_dir":"/usr/libexec/everest/modules","prefix":"/usr","telemetry_enabled":false,"telemetry_prefix":"everest-telemetry/","validate_schema":false}`, o.EtcDir)
	interfaces := `["evse_security"]`
	m.retain("interfaces", interfaces)
	if o.Interface != nil {
		m.retain("interface_definitions/evse_security", string(o.Interface))
	}
	m.retain("types", `[]`)
	if !o.at(Framework021) {
		m.retain("module_provides", fmt.Sprintf(`{%q:{"main":{"interface":"evse_security"}}}`, o.ModuleID))
		m.retain("error_types_map", `{}`)
		m.retain("module_config_cache", `{}`)
	}
	m.retain("settings", settings)
	if o.at(Framework020) {
		m.retain("module_names", fmt.Sprintf(`{%q:%q}`, o.ModuleID, o.ModuleName))
	}
}

func (m *LegacyManager) retain(sub, payload string) {
	topic := m.opts.Prefix + sub
	m.mu.Lock()
	m.retained = append(m.retained, topic)
	m.mu.Unlock()
	if tok := m.c.Publish(topic, 2, true, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		m.t.Errorf("fake manager: publish %s: %v", topic, tok.Error())
	}
}

func (m *LegacyManager) onMessage(c paho.Client, msg paho.Message) {
	w := WireMsg{Topic: msg.Topic(), Payload: string(msg.Payload()), QoS: msg.Qos(), Retained: msg.Retained()}
	m.mu.Lock()
	m.log = append(m.log, w)
	crashed := m.crashed != ""
	m.mu.Unlock()
	if crashed || w.Retained {
		return
	}
	o := m.opts
	switch w.Topic {
	case o.Prefix + "config/request", o.module() + "/get_config":
		m.mu.Lock()
		m.requests = append(m.requests, w)
		m.mu.Unlock()
		if topic, answer := m.configAnswer(w); topic != "" {
			m.out.publish(c, topic, 2, false, answer)
		}
	case o.module() + "/ready":
		var ready bool
		if err := json.Unmarshal(msg.Payload(), &ready); err != nil {
			// manager.cpp: modules_ready.at(id).ready = json.get<bool>() throws, and nothing
			// catches it: the manager terminates, and every module with it.
			m.mu.Lock()
			m.crashed = fmt.Sprintf("type must be boolean: %s", w.Payload)
			m.mu.Unlock()
			return
		}
		m.readyCh <- w.Payload
		if ready {
			m.out.publish(c, o.Prefix+"ready", 2, false, []byte("true"))
			m.mu.Lock()
			retained := append([]string(nil), m.retained...)
			m.mu.Unlock()
			for _, topic := range retained {
				m.out.publish(c, topic, 0, true, []byte{})
			}
		}
	}
}

// configAnswer is the manager's answer to a config request, or no answer ("") for a request
// it does not understand or does not listen for.
func (m *LegacyManager) configAnswer(req WireMsg) (string, []byte) {
	o := m.opts
	switch {
	case req.Topic == o.Prefix+"config/request" && o.at(Framework022):
		// ConfigService: Request request = data; a request without a top-level "type" (the
		// v0.25 envelope) throws "key 'type' not found" and is dropped.
		var r struct {
			Type    *string `json:"type"`
			Origin  string  `json:"origin"`
			Request struct {
				Type string `json:"type"`
			} `json:"request"`
		}
		if json.Unmarshal([]byte(req.Payload), &r) != nil || r.Type == nil || *r.Type != "Get" || r.Request.Type != "Module" || r.Origin != o.ModuleID {
			return "", nil
		}
		return o.module() + "/response", m.ConfigResponse()
	case req.Topic == o.module()+"/get_config" && o.at(Framework019) && !o.at(Framework022):
		return o.module() + "/config", m.ConfigResponse()
	}
	return "", nil
}

// ConfigResponse is this generation's config answer, exactly as its manager writes it
// (nlohmann::json dumps objects with sorted keys).
func (m *LegacyManager) ConfigResponse() []byte {
	o := m.opts
	var list []string
	obj := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(o.Params)) {
		v, _ := json.Marshal(o.Params[k])
		list = append(list, fmt.Sprintf(`{"characteristics":{"datatype":%q,"mutability":"ReadOnly"},"name":%q,"value":%s}`, datatypeOf(o.Params[k]), k, v))
		obj[k] = o.Params[k]
	}
	params := `{"!module":[` + strings.Join(list, ",") + `],"main":[]}`
	switch {
	case o.at(Framework022):
		return []byte(fmt.Sprintf(`{"response":{"data":{"mappings":{%q:null},"module_config":{"access":null,"configuration_parameters":%s,"connections":{},"mapping":null,"module_id":%q,"module_name":%q,"standalone":false,"telemetry_enabled":false}},"type":"Module"},"status":"Ok","status_info":"","type":"Get"}`,
			o.ModuleID, params, o.ModuleID, o.ModuleName))
	case o.at(Framework021):
		return []byte(fmt.Sprintf(`{"mappings":{%q:null},"module_config":{"configuration_parameters":%s,"connections":{},"mapping":null,"module_id":%q,"module_name":%q,"standalone":false,"telemetry_enabled":false}}`,
			o.ModuleID, params, o.ModuleID, o.ModuleName))
	}
	// v0.19, v0.20: the config file's entry (here it sets private_key_password only) with the
	// parsed map: every manifest key, the default where the file sets none; v0.20 wraps each
	// value as {"type","value"}. v0.19 still copies the module_names in (the whole serialized
	// config, minus "main").
	parsed := map[string]any{}
	for k, v := range obj {
		parsed[k] = v
		if o.at(Framework020) {
			parsed[k] = map[string]any{"type": "string", "value": v}
		}
	}
	configMap, _ := json.Marshal(parsed)
	configModule, _ := json.Marshal(map[string]any{"private_key_password": obj["private_key_password"]})
	moduleNames := ""
	if !o.at(Framework020) {
		moduleNames = fmt.Sprintf(`,"module_names":{%q:%q}`, o.ModuleID, o.ModuleName)
	}
	return []byte(fmt.Sprintf(`{"mappings":{%q:null},"module_config":{%q:{"config_implementation":{},"config_maps":{"!module":%s,"main":null},"config_module":%s,"connections":{},"mapping":{},"module":%q}}%s}`,
		o.ModuleID, o.ModuleID, configMap, configModule, o.ModuleName, moduleNames))
}

// WaitReady waits for the module's ready and returns its payload; it fails the test if the
// manager "died" of a ready that was not a bare bool.
func (m *LegacyManager) WaitReady(t testing.TB, d time.Duration) string {
	t.Helper()
	select {
	case p := <-m.readyCh:
		return p
	case <-time.After(d):
		t.Fatalf("fake %s manager: no ready within %v (crashed: %q; config requests: %v)", m.opts.Framework, d, m.Crashed(), m.ConfigRequests())
		return ""
	}
}

// Crashed says why the manager would have terminated; "" if it would not.
func (m *LegacyManager) Crashed() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashed
}

// ConfigRequests returns the config requests received, on every config topic.
func (m *LegacyManager) ConfigRequests() []WireMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]WireMsg(nil), m.requests...)
}

// Log returns every message seen under the prefix, in order.
func (m *LegacyManager) Log() []WireMsg {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]WireMsg(nil), m.log...)
}

// LegacyCaller is a fake calling module of framework v0.17 to v0.24: it publishes calls on the
// provider's one cmd topic exactly as Everest::call_cmd writes them, and takes the result with
// the call's id from the same topic.
type LegacyCaller struct {
	Origin string
	prefix string // P modules/<id>/impl/<impl>
	c      paho.Client

	mu      sync.Mutex
	waiting map[string]chan WireMsg
	vars    chan WireMsg
}

// NewLegacyCaller connects a caller with module id origin of the provider's implementation
// (prefix "everest/modules/evse_security/impl/main" and the like).
func NewLegacyCaller(t testing.TB, url, implPrefix, origin string) *LegacyCaller {
	t.Helper()
	c := &LegacyCaller{Origin: origin, prefix: implPrefix, waiting: map[string]chan WireMsg{}, vars: make(chan WireMsg, 100)}
	po := paho.NewClientOptions().AddBroker(url).SetClientID(origin + "_" + randomHex(4)).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second)
	filters := map[string]byte{implPrefix + "/cmd": 2, implPrefix + "/var": 2}
	c.c = connectSubscribed(t, "fake caller "+origin, po, filters, c.onMessage)
	t.Cleanup(func() { c.c.Disconnect(100) })
	return c
}

func (c *LegacyCaller) onMessage(_ paho.Client, msg paho.Message) {
	w := WireMsg{Topic: msg.Topic(), Payload: string(msg.Payload()), QoS: msg.Qos(), Retained: msg.Retained()}
	if strings.HasSuffix(w.Topic, "/var") {
		c.vars <- w
		return
	}
	var m struct {
		Type string `json:"type"`
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if json.Unmarshal(msg.Payload(), &m) != nil || m.Type != "result" {
		return // calls, ours and others'
	}
	c.mu.Lock()
	ch, ok := c.waiting[m.Data.ID]
	delete(c.waiting, m.Data.ID)
	c.mu.Unlock()
	if ok {
		ch <- w
	}
}

// CallMessage is the call message of Everest::call_cmd: keys sorted, as nlohmann writes them.
func CallMessage(name, id, origin string, args map[string]any) string {
	if args == nil {
		args = map[string]any{}
	}
	a, _ := json.Marshal(args) // Go sorts map keys too
	return fmt.Sprintf(`{"data":{"args":%s,"id":%q,"origin":%q},"name":%q,"type":"call"}`, a, id, origin, name)
}

// Call calls name with args under call id id and returns the raw result message.
func (c *LegacyCaller) Call(name, id string, args map[string]any) (WireMsg, error) {
	ch := make(chan WireMsg, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	c.c.Publish(c.prefix+"/cmd", 2, false, CallMessage(name, id, c.Origin, args))
	select {
	case r := <-ch:
		return r, nil
	case <-time.After(CallTimeout):
		return WireMsg{}, fmt.Errorf("%s (id %s): no result within %v", name, id, CallTimeout)
	}
}

// WaitVar waits for the next message on the var topic.
func (c *LegacyCaller) WaitVar(d time.Duration) (WireMsg, error) {
	select {
	case v := <-c.vars:
		return v, nil
	case <-time.After(d):
		return WireMsg{}, fmt.Errorf("no variable within %v", d)
	}
}

// Vars returns the variable messages received so far, without waiting.
func (c *LegacyCaller) Vars() []WireMsg {
	var out []WireMsg
	for {
		select {
		case v := <-c.vars:
			out = append(out, v)
		default:
			return out
		}
	}
}

// InterfaceDefinition is the evse_security definition of everest-core release (e.g.
// "2024.9.0") as JSON, the form the manager publishes under interface_definitions/: the
// vendored current interface, taken back through the interface's history (see api/iface.go).
func InterfaceDefinition(t testing.TB, release string) json.RawMessage {
	t.Helper()
	v, err := readYAML("interfaces-evse_security.yaml")
	if err != nil {
		t.Fatal(err)
	}
	def, _ := v.(map[string]any)
	cmds, _ := def["cmds"].(map[string]any)
	before := func(r string) bool { return ReleaseBefore(release, r) }
	if before("2025.6.0") {
		delete(def, "vars")
	}
	if before("2025.4.0") {
		verify, _ := cmds["verify_certificate"].(map[string]any)
		args, _ := verify["arguments"].(map[string]any)
		delete(args, "certificate_types")
		args["certificate_type"] = map[string]any{"description": "Indicates the type of the certificate", "type": "string",
			"$ref": "/evse_security#/LeafCertificateType"}
	}
	if before("2024.11.0") {
		delete(cmds, "get_verify_location")
	}
	if before("2024.10.0") {
		delete(cmds, "get_all_valid_certificates_info")
	}
	out, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ReleaseBefore reports whether everest-core release tag a (YYYY.M.P) comes before b
// (api.ReleaseBefore). The tests' account of the interface history (InterfaceDefinition, the
// generation tests) is their own; only the comparison of tags is shared.
func ReleaseBefore(a, b string) bool { return api.ReleaseBefore(a, b) }
