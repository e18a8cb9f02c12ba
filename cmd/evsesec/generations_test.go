package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/testpki"
)

// generation is one framework generation the binary must drop into, as its release's manager
// starts and configures a module and as its release's callers call it.
type generation struct {
	// framework is the framework tag the fake manager acts out.
	framework string
	// release is the everest-core release whose interface the callers speak.
	release string
	// fixtures is the directory under everest/testdata/generations of the exact messages.
	fixtures string
	// configTopics are the topics (under the prefix) the module's config requests must go to,
	// in order: the detection asks in every form the retained topics leave open.
	configTopics []string
	// configTopicsRaced is what the requests may also be when the module decides before the
	// retained topic that narrows them arrives (the module decides at the first retained topic,
	// and a busy machine can deliver a bare P interfaces before P module_provides): the extra bare
	// request is one that manager does not listen for, so it is harmless.
	configTopicsRaced []string
	// errors: the callers read error results (v0.22 on); else a failure is answered with the
	// command's failure value.
	errors bool
}

var generations = []generation{
	{framework: everesttest.Framework024, release: "2025.10.0", fixtures: "v0.24",
		configTopics: []string{"config/request", "modules/evse_security/get_config"}, errors: true},
	{framework: everesttest.Framework022, release: "2025.6.0", fixtures: "v0.24",
		configTopics: []string{"config/request", "modules/evse_security/get_config"}, errors: true},
	{framework: everesttest.Framework021, release: "2025.5.0", fixtures: "v0.21",
		configTopics: []string{"config/request", "modules/evse_security/get_config"}},
	{framework: everesttest.Framework020, release: "2025.1.0", fixtures: "v0.20",
		configTopics:      []string{"modules/evse_security/get_config"},
		configTopicsRaced: []string{"config/request", "modules/evse_security/get_config"}},
	{framework: everesttest.Framework019, release: "2024.11.0", fixtures: "v0.19",
		configTopics:      []string{"modules/evse_security/get_config"},
		configTopicsRaced: []string{"config/request", "modules/evse_security/get_config"}},
	{framework: everesttest.Framework017, release: "2024.9.0", fixtures: "v0.17"},
}

// fixture reads everest/testdata/generations/<dir>/<name>, without its final newline.
func fixture(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "everest", "testdata", "generations", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// argvOf is the command line the generation's manager starts the module with
// (src/manager.cpp exec_cpp_module at the tag): from v0.19 on the MQTT flags, before that only
// the config file.
func argvOf(framework, prefix, port, confFile string) []string {
	if framework < everesttest.Framework019 {
		return []string{"evse_security:EvseSecurity", "--prefix", prefix, "--conf", confFile, "--module", "evse_security"}
	}
	return managerArgv(prefix, port)
}

// The real binary under each generation's (fake) manager, started with that manager's argv:
// the config exchange, metadata and ready byte for byte as the generation's framework writes
// them, calls answered on the one cmd topic with the generation's result and error forms, the
// variable only where the release's interface has it, and a clean exit on SIGTERM.
func TestGenerations(t *testing.T) {
	bin := buildBinary(t)
	for _, g := range generations {
		t.Run(g.framework, func(t *testing.T) { runGeneration(t, bin, g, everesttest.StartBroker(t).URL()) })
	}
	// Debian's mosquitto, as on a charger, for one generation of each config exchange.
	for _, g := range []generation{generations[0], generations[3]} {
		t.Run("mosquitto/"+g.framework, func(t *testing.T) { runGeneration(t, bin, g, everesttest.StartMosquitto(t)) })
	}
}

func runGeneration(t *testing.T, bin string, g generation, brokerURL string) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	etc := filepath.Join(prefix, "etc", "everest")
	certsRoot := filepath.Join(etc, "certs")
	p, _ := writePKI(t, certsRoot, testpki.Options{})
	// One parameter off its default, so that the test sees the config reach the store.
	mfRoot, err := os.ReadFile(filepath.Join(certsRoot, "ca", "mf", "MF_ROOT_CA.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(certsRoot, "ca", "mf", "MF_CUSTOM_ROOT.pem"), mfRoot, 0o644); err != nil {
		t.Fatal(err)
	}
	params := everesttest.ManifestDefaults(t)
	params["mf_ca_bundle"] = customMF
	iface := everesttest.InterfaceDefinition(t, g.release)
	confFile := filepath.Join(etc, "config.yaml")
	if g.framework < everesttest.Framework019 {
		writeV017Installation(t, prefix, confFile, u.Port(), iface)
	}
	mgr := everesttest.StartLegacyManager(t, everesttest.LegacyManagerOptions{URL: brokerURL, Framework: g.framework,
		EtcDir: etc, Interface: iface, Params: params})
	// The topic levels of the generation, written out as the framework's lib/config.cpp builds
	// them: v0.17 and v0.18 have no modules/ and impl/ levels.
	moduleTopic, implTopic := "everest/modules/evse_security", "everest/modules/evse_security/impl/main"
	if g.framework < everesttest.Framework019 {
		moduleTopic, implTopic = "everest/evse_security", "everest/evse_security/main"
	}
	caller := everesttest.NewLegacyCaller(t, brokerURL, implTopic, "probe")

	var errb bytes.Buffer
	cmd := &exec.Cmd{Path: bin, Args: argvOf(g.framework, prefix, u.Port(), confFile), Stderr: &errb, Stdout: &errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	if got := mgr.WaitReady(t, 20*time.Second); got != fixture(t, g.fixtures, "ready.json") {
		t.Errorf("ready %s", got)
	}
	call := func(name string, args map[string]any) string {
		t.Helper()
		id := fmt.Sprintf("%08x-0000-4000-8000-000000000000", time.Now().UnixNano()&0xffffffff)
		r, err := caller.Call(name, id, args)
		if err != nil {
			t.Fatalf("%v\n%s", err, errb.String())
		}
		if r.Topic != implTopic+"/cmd" || r.QoS != 2 {
			t.Errorf("%s: result on %s at QoS %d", name, r.Topic, r.QoS)
		}
		return strings.ReplaceAll(r.Payload, id, "ID")
	}
	var topics []string
	for _, r := range mgr.ConfigRequests() {
		topics = append(topics, strings.TrimPrefix(r.Topic, "everest/"))
		switch r.Topic {
		case "everest/config/request":
			if r.Payload != fixture(t, "v0.24", "config_request.json") {
				t.Errorf("config request %s", r.Payload)
			}
		case "everest/modules/evse_security/get_config":
			if r.Payload != fixture(t, "v0.21", "get_config.json") {
				t.Errorf("get_config %s", r.Payload)
			}
		}
		if r.QoS != 2 || r.Retained {
			t.Errorf("config request on %s: QoS %d, retained %v", r.Topic, r.QoS, r.Retained)
		}
	}
	if got := strings.Join(topics, " "); got != strings.Join(g.configTopics, " ") && (g.configTopicsRaced == nil || got != strings.Join(g.configTopicsRaced, " ")) {
		t.Errorf("config requests on %q, want %q", topics, g.configTopics)
	}
	if g.framework >= everesttest.Framework019 {
		got := strings.ReplaceAll(string(mgr.ConfigResponse()), customMF, "ca/mf/MF_ROOT_CA.pem")
		if got != fixture(t, g.fixtures, "config_answer.json") {
			t.Errorf("the fake manager's config answer is not the fixture:\n%s", got)
		}
	}
	if got := call("get_verify_file", map[string]any{"certificate_type": "MF"}); got != fmt.Sprintf(`{"data":{"id":"ID","origin":"evse_security","retval":%q},"name":"get_verify_file","type":"result"}`, filepath.Join(certsRoot, customMF)) {
		t.Errorf("the config's mf_ca_bundle did not reach the store: %s", got)
	}
	meta := ""
	for _, m := range mgr.Log() {
		if m.Topic == moduleTopic+"/metadata" {
			meta = m.Payload
		}
		if strings.Contains(m.Topic, "evse_security/") && !strings.HasPrefix(m.Topic, "everest/interface_definitions/") && !strings.HasPrefix(m.Topic, moduleTopic+"/") {
			t.Errorf("a topic of another generation's layout on a %s wire: %s", g.framework, m.Topic)
		}
		if (m.Topic == moduleTopic+"/metadata" || m.Topic == moduleTopic+"/ready") && (m.QoS != 2 || m.Retained) {
			t.Errorf("%s at QoS %d, retained %v", m.Topic, m.QoS, m.Retained)
		}
		if strings.Contains(m.Payload, `"msg_type"`) && !m.Retained {
			t.Errorf("an enveloped (v0.25) message on a %s wire: %s %s", g.framework, m.Topic, m.Payload)
		}
	}
	if meta != fixture(t, "v0.24", "metadata.json") {
		t.Errorf("metadata %q", meta)
	}

	// The call exactly as the real v0.24 caller wrote it gets the answer the real C++ module gave.
	var real struct {
		Data struct {
			ID   string         `json:"id"`
			Args map[string]any `json:"args"`
		} `json:"data"`
	}
	callFixture := fixture(t, "v0.24", "call_is_ca_certificate_installed.json")
	if err := json.Unmarshal([]byte(callFixture), &real); err != nil {
		t.Fatal(err)
	}
	if got := everesttest.CallMessage("is_ca_certificate_installed", real.Data.ID, "probe", real.Data.Args); got != callFixture {
		t.Fatalf("the fake caller does not write calls as the framework does:\n%s\n%s", got, callFixture)
	}
	// The real module's store had no CSMS root; this one has: true where the capture says false.
	want := strings.Replace(fixture(t, "v0.24", "result_is_ca_certificate_installed.json"), `"retval":false`, `"retval":true`, 1)
	if got := call("is_ca_certificate_installed", real.Data.Args); got != strings.ReplaceAll(want, real.Data.ID, "ID") {
		t.Errorf("is_ca_certificate_installed:\n got %s\nwant %s", got, want)
	}

	caller.Vars()
	if got := call("install_ca_certificate", map[string]any{"certificate": string(p.MOSubCA1.CertPEM()), "certificate_type": "MO"}); got != `{"data":{"id":"ID","origin":"evse_security","retval":"Accepted"},"name":"install_ca_certificate","type":"result"}` {
		t.Errorf("install_ca_certificate %s", got)
	}
	// The release thresholds here restate the interface history (api/iface.go) on purpose: they
	// are the test's own account of what each release's callers get, not a reading of
	// api.InterfaceVersions, so a wrong entry there fails here.
	// The variable goes out before the result, on the same connection: it is here by now.
	vars := caller.Vars()
	if hasVar := !everesttest.ReleaseBefore(g.release, "2025.6.0"); hasVar {
		wantVar := strings.Replace(fixture(t, "v0.24", "var_certificate_store_update.json"), `"CSMS"`, `"MO"`, 1)
		if len(vars) != 1 || vars[0].Payload != wantVar || vars[0].QoS != 2 {
			t.Errorf("certificate_store_update %+v, want %s", vars, wantVar)
		}
	} else if len(vars) != 0 {
		t.Errorf("release %s has no certificate_store_update, got %+v", g.release, vars)
	}

	verifyArgs := map[string]any{"certificate_chain": string(p.CSMSLeaf.ChainPEM()), "certificate_types": []string{"CSMS"}}
	if everesttest.ReleaseBefore(g.release, "2025.4.0") {
		verifyArgs = map[string]any{"certificate_chain": string(p.CSMSLeaf.ChainPEM()), "certificate_type": "CSMS"}
	}
	if got := call("verify_certificate", verifyArgs); got != `{"data":{"id":"ID","origin":"evse_security","retval":"Valid"},"name":"verify_certificate","type":"result"}` {
		t.Errorf("verify_certificate %s", got)
	}
	info := call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false})
	if hasRoot := strings.Contains(info, `"certificate_root"`); hasRoot != !everesttest.ReleaseBefore(g.release, "2024.10.0") || !strings.Contains(info, `"status":"Accepted"`) {
		t.Errorf("get_leaf_certificate_info for release %s: %s", g.release, info)
	}

	bad := call("install_ca_certificate", map[string]any{"certificate": "x", "certificate_type": "FOO"})
	if g.errors {
		if want := fixture(t, "v0.24", "result_error.json"); bad != want {
			t.Errorf("error result:\n got %s\nwant %s", bad, want)
		}
		if !hasKeysOf(t, bad, fixture(t, "v0.24", "real_result_error.json")) {
			t.Errorf("the error result lacks what the real v0.24 module sends: %s", bad)
		}
	} else if want := fixture(t, g.fixtures, "result_failure.json"); bad != want {
		t.Errorf("failure result:\n got %s\nwant %s", bad, want)
	}

	if c := mgr.Crashed(); c != "" {
		t.Errorf("the manager would have died: %s", c)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, errb.String())
	}
	for _, want := range []string{"EVerest wire chosen", "EVerest is ready (global ready)"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, errb.String())
		}
	}
}

// customMF is the mf_ca_bundle the managers configure, off the manifest's default.
const customMF = "ca/mf/MF_CUSTOM_ROOT.pem"

// writeV017Installation writes what a v0.17/v0.18 module reads from the disk: the config file
// (broker, prefix, the module's entry), the module's manifest and the interface definition.
func writeV017Installation(t *testing.T, prefix, confFile, port string, iface json.RawMessage) {
	t.Helper()
	conf := fmt.Sprintf("settings:\n  prefix: %s\n  mqtt_broker_host: 127.0.0.1\n  mqtt_broker_port: %s\nactive_modules:\n  evse_security:\n    module: EvseSecurity\n    config_module:\n      private_key_password: \"\"\n      mf_ca_bundle: %s\n  probe:\n    module: EvseSecProbe\n", prefix, port, customMF)
	manifest, err := os.ReadFile(filepath.Join(everesttest.DataDir(), "EvseSecurity-manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		confFile: []byte(conf),
		filepath.Join(prefix, "libexec", "everest", "modules", "EvseSecurity", "manifest.yaml"): manifest,
		// JSON is YAML: the interface file as the manager would read it.
		filepath.Join(prefix, "share", "everest", "interfaces", "evse_security.yaml"): iface,
	}
	for path, data := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hasKeysOf reports whether result has the error keys (and the error type) of the real one.
func hasKeysOf(t *testing.T, result, real string) bool {
	t.Helper()
	var got, want struct {
		Data struct {
			Error map[string]string `json:"error"`
		} `json:"data"`
	}
	if json.Unmarshal([]byte(result), &got) != nil || json.Unmarshal([]byte(real), &want) != nil {
		return false
	}
	for k := range want.Data.Error {
		if _, ok := got.Data.Error[k]; !ok {
			return false
		}
	}
	return len(want.Data.Error) > 0
}

// The manager's command line alone tells v0.17/v0.18 (config file, no MQTT flags) apart.
func TestConfigFileArgv(t *testing.T) {
	for _, c := range []struct {
		argv []string
		path string
		ok   bool
	}{
		{argvOf(everesttest.Framework017, "/usr", "", "/etc/everest/x.yaml")[1:], "/etc/everest/x.yaml", true},
		{[]string{"--prefix", "/usr", "--config=/etc/everest/y.yaml", "--module", "m"}, "/etc/everest/y.yaml", true},
		{argvOf(everesttest.Framework024, "/usr", "1883", "")[1:], "", false},
		{[]string{"--module", "m", "--conf", "/c.yaml", "--mqtt_broker_socket_path", "/s"}, "", false},
		{[]string{"--module", "m"}, "", false},
	} {
		if path, ok := configFileArgv(c.argv); path != c.path || ok != c.ok {
			t.Errorf("configFileArgv(%q) = %q, %v", c.argv, path, ok)
		}
	}
}

// `evsesec serve --everest-wire v0.24` speaks the v0.22–v0.24 wire: a framework caller of that
// generation gets its answers byte for byte, `evsesec call --everest-wire v0.24` prints what the
// in-process call prints, and a v0.25 caller gets no answer. On v0.19–v0.21 a failed call is
// answered with the command's failure value.
func TestServeLegacyWire(t *testing.T) {
	root, _ := servePKI(t)
	for _, c := range []struct{ wire, badAnswer string }{
		{"v0.24", ""},
		{"v0.19-v0.21", `{"data":{"id":"b1","origin":"evse_security","retval":false},"name":"is_ca_certificate_installed","type":"result"}`},
	} {
		t.Run(c.wire, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "mqtt.sock")
			srv := serveInProcess("--certs", root, "--socket", sock, "--everest-wire", c.wire)
			defer srv.stop(t)
			broker := "unix://" + sock
			waitAnswering(t, broker, srv.log.String, "--everest-wire", c.wire)
			local, _, lc := runCLI("call", "--certs", root, "get_leaf_certificate_info", `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`)
			remote, errOut, rc := runCLI("call", "--broker", broker, "--everest-wire", c.wire, "get_leaf_certificate_info", `{"certificate_type":"V2G","encoding":"PEM","include_ocsp":false}`)
			if lc != 0 || rc != 0 || !sameJSON(local, remote) {
				t.Errorf("in-process exit %d %q; over MQTT exit %d %q %q", lc, local, rc, remote, errOut)
			}
			if _, _, code := runCLI("call", "--broker", broker, "--timeout", "500ms", "get_verify_file", `{"certificate_type":"V2G"}`); code != 1 {
				t.Errorf("a v0.25 call to a %s service: exit %d, want 1 (no answer)", c.wire, code)
			}
			caller := everesttest.NewLegacyCaller(t, broker, "everest/modules/evse_security/impl/main", "probe")
			if r, err := caller.Call("is_ca_certificate_installed", "a1", map[string]any{"certificate_type": "CSMS"}); err != nil ||
				r.Payload != `{"data":{"id":"a1","origin":"evse_security","retval":true},"name":"is_ca_certificate_installed","type":"result"}` {
				t.Errorf("is_ca_certificate_installed: %+v %v", r, err)
			}
			if c.badAnswer != "" {
				if r, err := caller.Call("is_ca_certificate_installed", "b1", map[string]any{"certificate_type": "XX"}); err != nil || r.Payload != c.badAnswer {
					t.Errorf("a failed call: %+v %v", r, err)
				}
			}
		})
	}
	for _, args := range [][]string{
		{"serve", "--certs", root, "--everest-wire", "v0.16"},
		{"call", "--broker", "tcp://127.0.0.1:1", "--everest-wire", "bogus", "get_verify_file", `{}`},
		{"call", "--broker", "tcp://127.0.0.1:1", "--everest-wire", "auto", "get_verify_file", `{}`},
	} {
		if _, errOut, code := runCLI(args...); code != exitUsage || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, %q", args, code, errOut)
		}
	}
}

// sameJSON reports whether two JSON texts hold the same value (the older wires write object keys
// sorted, as the C++ framework does).
func sameJSON(a, b string) bool {
	var x, y any
	return json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}

// What the command line and the environment decide before any MQTT: EVSESEC_EVEREST_WIRE
// forces a wire; a v0.17 command line with a readable config file takes the broker, prefix and
// config from the file; an unreadable one leaves the decision to the MQTT detection.
func TestChooseModuleWire(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	prefix := t.TempDir()
	conf := filepath.Join(prefix, "etc", "everest", "config.yaml")
	writeV017Installation(t, prefix, conf, "1999", everesttest.InterfaceDefinition(t, "2024.9.0"))
	choose := func(args []string) everest.Options {
		t.Helper()
		m, err := parseManagerArgs(args[1:])
		if err != nil {
			t.Fatal(err)
		}
		opts := everest.Options{Wire: everest.WireAuto, Broker: everest.Broker{URL: m.brokerURL()}, Prefix: m.everestPrefix}
		chooseModuleWire(&opts, m, args[1:], log)
		return opts
	}
	o := choose(argvOf(everesttest.Framework017, prefix, "", conf))
	if o.Wire != everest.WireV017 || o.Broker.URL != "tcp://127.0.0.1:1999" || o.Prefix != "everest/" || o.FileConfig == nil ||
		string(o.FileConfig.Params["mf_ca_bundle"]) != `"`+customMF+`"` || o.InstallPrefix != prefix || len(o.FileConfig.Interface) == 0 {
		t.Errorf("v0.17 command line: %+v", o)
	}
	if o := choose(argvOf(everesttest.Framework017, prefix, "", filepath.Join(prefix, "missing.yaml"))); o.Wire != everest.WireAuto || o.FileConfig != nil {
		t.Errorf("unreadable config file: %+v", o)
	}
	if o := choose(argvOf(everesttest.Framework024, prefix, "1883", "")); o.Wire != everest.WireAuto || o.FileConfig != nil {
		t.Errorf("v0.24 command line: %+v", o)
	}
	t.Setenv(wireEnv, "v0.24")
	if o := choose(argvOf(everesttest.Framework024, prefix, "1883", "")); o.Wire != everest.WireV022 || o.WireReason == "" {
		t.Errorf("%s=v0.24: %+v", wireEnv, o)
	}
	if o := choose(argvOf(everesttest.Framework017, prefix, "", conf)); o.Wire != everest.WireV022 || o.FileConfig != nil {
		t.Errorf("%s=v0.24 beats the v0.17 command line: %+v", wireEnv, o)
	}
	t.Setenv(wireEnv, "v9")
	if o := choose(argvOf(everesttest.Framework024, prefix, "1883", "")); o.Wire != everest.WireAuto {
		t.Errorf("%s=v9 (unknown): %+v", wireEnv, o)
	}
}

// `evsesec serve --everest-wire auto` next to a v0.24 manager (a standalone module) asks it
// for the config only to learn the wire, then reports ready in its form and serves its callers.
func TestServeAutoWire(t *testing.T) {
	root, _ := servePKI(t)
	broker := everesttest.StartBroker(t)
	mgr := everesttest.StartLegacyManager(t, everesttest.LegacyManagerOptions{URL: broker.URL(), Framework: everesttest.Framework024, EtcDir: "/etc/everest"})
	srv := serveInProcess("--certs", root, "--broker", broker.URL(), "--everest-wire", "auto")
	defer srv.stop(t)
	if got := mgr.WaitReady(t, 20*time.Second); got != "true" {
		t.Errorf("ready %s", got)
	}
	caller := everesttest.NewLegacyCaller(t, broker.URL(), "everest/modules/evse_security/impl/main", "probe")
	if r, err := caller.Call("is_ca_certificate_installed", "c1", map[string]any{"certificate_type": "V2G"}); err != nil ||
		r.Payload != `{"data":{"id":"c1","origin":"evse_security","retval":true},"name":"is_ca_certificate_installed","type":"result"}` {
		t.Errorf("is_ca_certificate_installed: %+v %v\n%s", r, err, srv.log.String())
	}
	if mgr.Crashed() != "" {
		t.Errorf("the manager would have died: %s", mgr.Crashed())
	}
}
