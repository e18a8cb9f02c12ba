package everest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// genFixture reads testdata/generations/<dir>/<name> without its final newline. The v0.24 files
// are the real v0.24.0 manager's and C++ module's messages; the older ones are written from the
// framework's sources at the tags (see testdata/generations/README.md).
func genFixture(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "generations", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

var legacyTopics = NewTopics("everest/", "evse_security", "main")

// The v0.22–v0.24 codec writes byte for byte what the real v0.24 framework wrote, and reads it.
func TestV022Golden(t *testing.T) {
	tp := legacyTopics
	call := genFixture(t, "v0.24", "call_is_ca_certificate_installed.json")
	name, c, ok, err := V022.DecodeCall(tp, tp.CmdShared(), []byte(call))
	if err != nil || !ok || name != "is_ca_certificate_installed" || c.Origin != "probe" || c.ID != "75390745-4e52-46cb-9fcb-b952690cbb7f" || string(c.Args) != `{"certificate_type":"CSMS"}` {
		t.Fatalf("DecodeCall = %q %+v %v %v", name, c, ok, err)
	}
	if topic, msg, err := V022.Call(tp, name, c.ID, c.Origin, c.Args); err != nil || topic != tp.CmdShared() || string(msg) != call {
		t.Errorf("Call = %s %s %v\nwant %s", topic, msg, err, call)
	}
	result := genFixture(t, "v0.24", "result_is_ca_certificate_installed.json")
	if topic, msg, err := V022.Result(tp, name, c, json.RawMessage("false"), nil); err != nil || topic != "everest/modules/evse_security/impl/main/cmd" || string(msg) != result {
		t.Errorf("Result = %s %s %v\nwant %s", topic, msg, err, result)
	}
	// Its own result on the shared topic is not a call.
	if _, _, ok, err := V022.DecodeCall(tp, tp.CmdShared(), []byte(result)); ok || err != nil {
		t.Errorf("a result read as a call: %v %v", ok, err)
	}
	r, ok, err := V022.DecodeResult(tp, tp.CmdShared(), []byte(result))
	if err != nil || !ok || r.ID != c.ID || string(r.Retval) != "false" || r.Origin != "evse_security" || r.Error != nil {
		t.Errorf("DecodeResult = %+v %v %v", r, ok, err)
	}
	if _, ok, _ := V022.DecodeResult(tp, tp.CmdShared(), []byte(call)); ok {
		t.Error("a call read as a result")
	}

	// The var, whatever order the value's fields come in.
	v := genFixture(t, "v0.24", "var_certificate_store_update.json")
	value := struct {
		Operation string `json:"operation"`
		CA        string `json:"ca_certificate_type"`
	}{"Installed", "CSMS"}
	if topic, msg, err := V022.Var(tp, StoreUpdateVar, value); err != nil || topic != "everest/modules/evse_security/impl/main/var" || string(msg) != v {
		t.Errorf("Var = %s %s %v\nwant %s", topic, msg, err, v)
	}
	if got, ok, err := V022.DecodeVar(tp, StoreUpdateVar, tp.VarShared(), []byte(v)); err != nil || !ok || string(got) != `{"ca_certificate_type":"CSMS","operation":"Installed"}` {
		t.Errorf("DecodeVar = %s %v %v", got, ok, err)
	}
	if _, ok, _ := V022.DecodeVar(tp, "other", tp.VarShared(), []byte(v)); ok {
		t.Error("another variable's message accepted")
	}

	// The error result carries v0.23/v0.24's keys (as the real module sent them) and v0.22's.
	e := &CmdError{Type: SchemaValidationError, Message: `install_ca_certificate: argument "certificate_type": "FOO" is not one of V2G, MO, CSMS, MF`}
	if _, msg, err := V022.Result(tp, "install_ca_certificate", Cmd{ID: "ID", Origin: "probe"}, nil, e); err != nil || string(msg) != genFixture(t, "v0.24", "result_error.json") {
		t.Errorf("error Result = %s %v", msg, err)
	}
	real := genFixture(t, "v0.24", "real_result_error.json")
	if r, ok, err := V022.DecodeResult(tp, tp.CmdShared(), []byte(real)); err != nil || !ok || r.Error == nil || r.Error.Type != HandlerException ||
		!strings.HasPrefix(r.Error.Message, "Provided string FOO") || r.Retval != nil {
		t.Errorf("real error result read as %+v %v %v", r, ok, err)
	}
	v22 := `{"data":{"error":{"event":"SchemaValidationFailed","msg":"bad"},"id":"x","origin":"evse_security"},"name":"n","type":"result"}`
	if r, _, err := V022.DecodeResult(tp, tp.CmdShared(), []byte(v22)); err != nil || r.Error == nil || *r.Error != (CmdError{Type: SchemaValidationError, Message: "bad"}) {
		t.Errorf("v0.22 error result read as %+v %v", r, err)
	}

	if got := string(V022.ModuleReady()); got != genFixture(t, "v0.24", "ready.json") {
		t.Errorf("ModuleReady %s", got)
	}
	if !V022.IsGlobalReady([]byte(genFixture(t, "v0.24", "global_ready.json"))) || V022.IsGlobalReady([]byte(`{"msg_type":"GlobalReady","data":true}`)) || V022.IsGlobalReady([]byte("false")) {
		t.Error("IsGlobalReady")
	}
	if topic, msg := V022.Metadata(tp, "EvseSecurity"); topic != "everest/modules/evse_security/metadata" || string(msg) != genFixture(t, "v0.24", "metadata.json") {
		t.Errorf("Metadata %s %s", topic, msg)
	}
	req, msg, resp := V022.ConfigRequest(tp)
	if req != "everest/config/request" || string(msg) != genFixture(t, "v0.24", "config_request.json") || resp != "everest/modules/evse_security/response" {
		t.Errorf("ConfigRequest %s %s %s", req, msg, resp)
	}
	mc, err := V022.ParseConfig(tp, []byte(genFixture(t, "v0.24", "config_answer.json")))
	if err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, "v0.24", mc)
	if _, err := V022.ParseConfig(tp, []byte(`{"status":"Error","status_info":"no such module"}`)); err == nil {
		t.Error("a failed config answer accepted")
	}
}

// checkDefaults checks a parsed config answer holding the manifest's defaults.
func checkDefaults(t *testing.T, gen string, mc ModuleConfig) {
	t.Helper()
	want := map[string]string{
		"csms_ca_bundle": `"ca/csms/CSMS_ROOT_CA.pem"`, "csms_leaf_cert_directory": `"client/csms"`, "csms_leaf_key_directory": `"client/csms"`,
		"mf_ca_bundle": `"ca/mf/MF_ROOT_CA.pem"`, "mo_ca_bundle": `"ca/mo/MO_ROOT_CA.pem"`, "private_key_password": `""`,
		"secc_leaf_cert_directory": `"client/cso"`, "secc_leaf_key_directory": `"client/cso"`, "v2g_ca_bundle": `"ca/v2g/V2G_ROOT_CA.pem"`,
	}
	got := map[string]string{}
	for k, v := range mc.Params {
		got[k] = string(v)
	}
	if !reflect.DeepEqual(got, want) || mc.ModuleName != "EvseSecurity" {
		t.Errorf("%s config: %s %v", gen, mc.ModuleName, got)
	}
}

// The v0.19–v0.21 codec: get_config → config, in each of its answer shapes; no error results.
func TestV019Golden(t *testing.T) {
	tp := legacyTopics
	req, msg, resp := V019.ConfigRequest(tp)
	if req != "everest/modules/evse_security/get_config" || string(msg) != genFixture(t, "v0.21", "get_config.json") || resp != "everest/modules/evse_security/config" {
		t.Errorf("ConfigRequest %s %s %s", req, msg, resp)
	}
	for _, gen := range []string{"v0.21", "v0.20", "v0.19"} {
		mc, err := V019.ParseConfig(tp, []byte(genFixture(t, gen, "config_answer.json")))
		if err != nil {
			t.Fatalf("%s: %v", gen, err)
		}
		checkDefaults(t, gen, mc)
	}
	// v0.19/v0.20 without the parsed map: the config file's own entry.
	mc, err := V019.ParseConfig(tp, []byte(`{"module_config":{"evse_security":{"config_module":{"private_key_password":"pw"},"module":"EvseSecurity"}}}`))
	if err != nil || string(mc.Params["private_key_password"]) != `"pw"` {
		t.Errorf("config_module only: %+v %v", mc, err)
	}
	if _, err := V019.ParseConfig(tp, []byte(`{"module_config":{"other":{}}}`)); err == nil {
		t.Error("another module's config accepted")
	}
	if V019.CarriesErrors() || V017.CarriesErrors() || !V022.CarriesErrors() || !V025.CarriesErrors() {
		t.Error("CarriesErrors")
	}
	if got := string(V019.ModuleReady()); got != genFixture(t, "v0.21", "ready.json") {
		t.Errorf("ModuleReady %s", got)
	}
	// Calls, results and vars are the same as v0.22–v0.24's.
	if _, msg, _ := V019.Result(tp, "is_ca_certificate_installed", Cmd{ID: "75390745-4e52-46cb-9fcb-b952690cbb7f", Origin: "probe"}, json.RawMessage("false"), nil); string(msg) != genFixture(t, "v0.24", "result_is_ca_certificate_installed.json") {
		t.Errorf("Result %s", msg)
	}
}

// The v0.17–v0.18 codec asks for no config over MQTT.
func TestV017Golden(t *testing.T) {
	if req, msg, resp := V017.ConfigRequest(legacyTopics); req != "" || msg != nil || resp != "" {
		t.Errorf("ConfigRequest %s %s %s", req, msg, resp)
	}
	if _, err := V017.ParseConfig(legacyTopics, []byte(`{}`)); err == nil {
		t.Error("ParseConfig without an MQTT config")
	}
	if got := string(V017.ModuleReady()); got != genFixture(t, "v0.17", "ready.json") {
		t.Errorf("ModuleReady %s", got)
	}
	// The topics of the real v0.17.2 and v0.18.0 managers and C++ modules: no modules/, no impl/.
	tp := V017.Layout(legacyTopics)
	for got, want := range map[string]string{
		tp.ModuleReady(): "everest/evse_security/ready", tp.Metadata(): "everest/evse_security/metadata",
		tp.CmdShared(): "everest/evse_security/main/cmd", tp.VarShared(): "everest/evse_security/main/var",
		tp.GlobalReady(): "everest/ready",
	} {
		if got != want {
			t.Errorf("v0.17 topic %s, want %s", got, want)
		}
	}
	if V022.Layout(tp).ModuleReady() != "everest/modules/evse_security/ready" || V025.Layout(tp).CmdShared() != "everest/modules/evse_security/impl/main/cmd" {
		t.Error("a later wire kept the v0.17 layout")
	}
}

func TestWireByName(t *testing.T) {
	for name, want := range map[string]string{"": "", "auto": "", "v0.25": WireV025, "current": WireV025, "V0.24": WireV022,
		"v0.22-v0.24": WireV022, "v0.20": WireV019, "v0.19-v0.21": WireV019, "v0.18": WireV017} {
		w, err := WireByName(name)
		got := ""
		if w != nil {
			got = w.Name()
		}
		if err != nil || got != want {
			t.Errorf("WireByName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := WireByName("v0.16"); err == nil || !strings.Contains(err.Error(), "v0.22-v0.24") {
		t.Errorf("unknown wire: %v", err)
	}
}

// The canonical form is nlohmann's: sorted keys, no HTML escaping, numbers as written.
func TestCanonicalJSON(t *testing.T) {
	got, err := canonicalJSON(json.RawMessage(`{"b":1.50,"a":{"d":"<&>","c":[3,{"z":null,"y":true}]}}`))
	if err != nil || string(got) != `{"a":{"c":[3,{"y":true,"z":null}],"d":"<&>"},"b":1.50}` {
		t.Errorf("canonicalJSON = %s, %v", got, err)
	}
}

// The detection decides only from what a manager of one generation can send.
func TestDetectionEvidence(t *testing.T) {
	for payload, want := range map[string]shape{
		"": shapeNone, "  ": shapeNone, "not json": shapeNone,
		`{"msg_type":"GetConfigResponse","data":{"etc_dir":"/etc/everest"}}`: shapeEnveloped,
		`{"etc_dir":"/etc/everest"}`:                                         shapeBare,
		`{"evse_security":"EvseSecurity"}`:                                   shapeBare,
		`["evse_security"]`:                                                  shapeBare,
	} {
		if got := shapeOf([]byte(payload)); got != want {
			t.Errorf("shapeOf(%q) = %v, want %v", payload, got, want)
		}
	}
	names := func(ws []Wire) string {
		var s []string
		for _, w := range ws {
			s = append(s, w.Name())
		}
		return strings.Join(s, " ")
	}
	for _, c := range []struct {
		settings, names shape
		provides        bool
		want            string
	}{
		{shapeEnveloped, shapeNone, false, WireV025},
		{shapeNone, shapeEnveloped, false, WireV025},
		{shapeBare, shapeBare, true, WireV019},
		{shapeBare, shapeNone, false, WireV022 + " " + WireV019},
		{shapeNone, shapeNone, false, WireV025 + " " + WireV022 + " " + WireV019},
	} {
		h := retainedHints{settings: c.settings, moduleNames: c.names, moduleProvides: c.provides}
		if got, why := h.verdict(); names(got) != c.want || why == "" {
			t.Errorf("verdict(%+v) = %s (%s), want %s", c, names(got), why, c.want)
		}
	}
	r := NewRunner(Options{Wire: WireAuto})
	tp := r.Topics()
	for _, c := range []struct {
		topic, payload, want string
	}{
		{tp.ModuleConfigTopic(), genFixture(t, "v0.21", "config_answer.json"), WireV019},
		{tp.ConfigResponse(), genFixture(t, "v0.24", "config_answer.json"), WireV022},
		{tp.ConfigResponse(), `{"msg_type":"GetConfigResponse","data":{"status":"Ok"}}`, WireV025},
		{tp.ConfigResponse(), ``, ""},
		{tp.Settings(), `{}`, ""},
	} {
		w, why := r.wireOfAnswer(configAnswer{topic: c.topic, payload: []byte(c.payload)})
		got := ""
		if w != nil {
			got = w.Name()
		}
		if got != c.want || (w != nil && why == "") {
			t.Errorf("wireOfAnswer(%s) = %q (%s), want %q", c.topic, got, why, c.want)
		}
	}
	if r.Wire() != nil {
		t.Error("an auto runner has a wire before the manager answered")
	}
	if NewRunner(Options{}).Wire() != V025 {
		t.Error("the default wire is not v0.25")
	}
}

// A v0.17/v0.18 module reads its config from the EVerest config file: settings, its entry, the
// manifest's defaults under what the entry sets, the interface definition.
func TestReadConfigFile(t *testing.T) {
	prefix := t.TempDir()
	conf := filepath.Join(prefix, "etc", "everest", "config.yaml")
	write := func(path, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(conf, "settings:\n  mqtt_broker_host: 10.0.0.2\n  mqtt_broker_port: 1884\n  mqtt_everest_prefix: ev\nactive_modules:\n  sec:\n    module: EvseSecurity\n    config_module:\n      private_key_password: secret\n")
	write(filepath.Join(prefix, "libexec", "everest", "modules", "EvseSecurity", "manifest.yaml"),
		"config:\n  v2g_ca_bundle:\n    type: string\n    default: ca/v2g/V2G_ROOT_CA.pem\n  private_key_password:\n    type: string\n    default: \"\"\n")
	write(filepath.Join(prefix, "share", "everest", "interfaces", "evse_security.yaml"), "cmds:\n  verify_certificate:\n    arguments: {}\n")
	f, err := ReadConfigFile(conf, prefix, "sec")
	if err != nil {
		t.Fatal(err)
	}
	if f.BrokerURL() != "tcp://10.0.0.2:1884" || f.EverestPrefix != "ev/" || f.Module.EtcDir != filepath.Join(prefix, "etc", "everest") ||
		f.Module.ModuleName != "EvseSecurity" || f.Module.Wire != WireV017 {
		t.Errorf("ReadConfigFile = %+v", f)
	}
	if got := map[string]string{"p": string(f.Module.Params["private_key_password"]), "v": string(f.Module.Params["v2g_ca_bundle"])}; got["p"] != `"secret"` || got["v"] != `"ca/v2g/V2G_ROOT_CA.pem"` {
		t.Errorf("params %v", got)
	}
	if string(f.Module.Interface) != `{"cmds":{"verify_certificate":{"arguments":{}}}}` {
		t.Errorf("interface %s", f.Module.Interface)
	}
	t.Setenv("MQTT_SERVER_ADDRESS", "127.0.0.9")
	t.Setenv("MQTT_SERVER_PORT", "1999")
	if f, err := ReadConfigFile(conf, prefix, "sec"); err != nil || f.BrokerURL() != "tcp://127.0.0.9:1999" {
		t.Errorf("environment override: %s %v", f.BrokerURL(), err)
	}
	write(conf, "settings:\n  mqtt_broker_port: \"1885\"\nactive_modules:\n  sec:\n    module: EvseSecurity\n")
	t.Setenv("MQTT_SERVER_ADDRESS", "")
	t.Setenv("MQTT_SERVER_PORT", "")
	if f, err := ReadConfigFile(conf, prefix, "sec"); err != nil || f.BrokerURL() != "tcp://localhost:1885" || string(f.Module.Params["private_key_password"]) != `""` {
		t.Errorf("quoted port, defaults: %s %v %v", f.BrokerURL(), f.Module.Params, err)
	}
	if _, err := ReadConfigFile(conf, prefix, "other"); err == nil {
		t.Error("a module the file does not configure")
	}
	if _, err := ReadConfigFile(filepath.Join(prefix, "missing.yaml"), prefix, "sec"); err == nil {
		t.Error("a missing config file")
	}
}

// The v0.25 Wire writes the golden v0.25 messages of testdata/wire, on the v0.25 topics.
func TestV025Wire(t *testing.T) {
	tp := legacyTopics
	c := Cmd{ID: "0b9d3c2e-6f4a-4c4b-9a57-1f0e2d3c4b5a", Origin: "ocpp"}
	if topic, msg, err := V025.Result(tp, "install_ca_certificate", c, json.RawMessage(`"Accepted"`), nil); err != nil ||
		topic != "everest/modules/evse_security/impl/main/cmd/install_ca_certificate/response/ocpp" || string(msg) != golden(t, "result_install_ca_certificate.json") {
		t.Errorf("Result %s %s %v", topic, msg, err)
	}
	if topic, msg, err := V025.Var(tp, StoreUpdateVar, json.RawMessage(`{"operation":"Installed","ca_certificate_type":"CSMS"}`)); err != nil ||
		topic != "everest/modules/evse_security/impl/main/var/certificate_store_update" || string(msg) != golden(t, "var_certificate_store_update.json") {
		t.Errorf("Var %s %s %v", topic, msg, err)
	}
	if string(V025.ModuleReady()) != golden(t, "module_ready.json") || !V025.IsGlobalReady([]byte(golden(t, "global_ready.json"))) || V025.IsGlobalReady([]byte("true")) {
		t.Error("ready")
	}
	if req, msg, resp := V025.ConfigRequest(tp); req != "everest/config/request" || string(msg) != golden(t, "get_config.json") || resp != "everest/modules/evse_security/response" {
		t.Errorf("ConfigRequest %s %s %s", req, msg, resp)
	}
	name, got, ok, err := V025.DecodeCall(tp, tp.Cmd("install_ca_certificate"), []byte(golden(t, "cmd_install_ca_certificate.json")))
	if err != nil || !ok || name != "install_ca_certificate" || got.ID != c.ID || got.Origin != "ocpp" {
		t.Errorf("DecodeCall %q %+v %v %v", name, got, ok, err)
	}
	if _, _, ok, _ := V025.DecodeCall(tp, tp.CmdResponse("install_ca_certificate", "ocpp"), []byte(golden(t, "result_install_ca_certificate.json"))); ok {
		t.Error("a result topic read as a call")
	}
	if topic, _ := V025.Metadata(tp, "EvseSecurity"); topic != "" {
		t.Error("v0.25 metadata: evsesec never sent it on this wire")
	}
}
