package main

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// managerArgv is the manager's command line for a module (exec_cpp_module in the framework's
// manager.cpp), with argv[0] "<module id>:<ModuleName>".
func managerArgv(prefix, port string) []string {
	return []string{"evse_security:EvseSecurity", "--prefix", prefix, "--module", "evse_security", "--log_config", "/dev/null",
		"--mqtt_everest_prefix", "everest/", "--mqtt_external_prefix", "", "--mqtt_broker_host", "127.0.0.1", "--mqtt_broker_port", port}
}

func TestParseManagerArgs(t *testing.T) {
	m, err := parseManagerArgs(managerArgv("/opt/ev", "1883")[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := managerArgs{prefix: "/opt/ev", module: "evse_security", logConfig: "/dev/null", everestPrefix: "everest/", externalPrefix: "", host: "127.0.0.1", port: "1883"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("parseManagerArgs =\n%+v\nwant\n%+v", m, want)
	}
	if got := m.brokerURL(); got != "tcp://127.0.0.1:1883" {
		t.Errorf("brokerURL %s", got)
	}
	m, err = parseManagerArgs([]string{"--module=sec", "--config", "/etc/everest/x.yaml", "--mqtt_broker_socket_path", "/tmp/mqtt_broker.sock", "--verbose"})
	if err != nil || m.module != "sec" || m.brokerURL() != "unix:///tmp/mqtt_broker.sock" || !reflect.DeepEqual(m.ignored, []string{"--config", "--verbose"}) {
		t.Errorf("parseManagerArgs = %+v, %v", m, err)
	}
	if m.prefix != "/usr" || m.everestPrefix != "everest/" {
		t.Errorf("defaults: %+v", m)
	}
	t.Setenv("MQTT_SERVER_ADDRESS", "10.0.0.1")
	t.Setenv("MQTT_SERVER_PORT", "1884")
	if m, err := parseManagerArgs([]string{"--module", "sec", "--mqtt_broker_host", "localhost"}); err != nil || m.brokerURL() != "tcp://10.0.0.1:1884" {
		t.Errorf("environment override: %+v, %v", m, err)
	}
	for _, bad := range [][]string{{"--prefix", "/usr"}, {"--module"}, {"--module", "x", "stray"}} {
		if _, err := parseManagerArgs(bad); err == nil {
			t.Errorf("parseManagerArgs(%q): no error", bad)
		}
	}
}

func TestIsModuleInvocation(t *testing.T) {
	for args, want := range map[string]bool{
		"--prefix /usr --module evse_security": true,
		"--module=evse_security":               true,
		"serve --module x":                     false,
		"--help":                               false,
		"call --broker x get_verify_file":      false,
		"":                                     false,
	} {
		if got := isModuleInvocation(strings.Fields(args)); got != want {
			t.Errorf("isModuleInvocation(%q) = %v", args, got)
		}
	}
	// Wrong manager arguments are a usage error, not a panic or a hang.
	if _, errOut, code := runCLI("--module"); code != exitUsage || !strings.Contains(errOut, "module mode") {
		t.Errorf("--module without a value: exit %d, %q", code, errOut)
	}
}

// The binary started exactly as the EVerest manager starts a module: the handshake, calls, the
// variable, and a clean exit on SIGTERM. The certificates are where EVerest keeps them for this
// prefix: <prefix>/etc/everest/certs. Against the embedded broker and Debian's mosquitto.
func TestModuleProcess(t *testing.T) {
	bin := buildBinary(t)
	t.Run("embedded broker", func(t *testing.T) { moduleProcess(t, bin, everesttest.StartBroker(t).URL()) })
	t.Run("mosquitto", func(t *testing.T) { moduleProcess(t, bin, everesttest.StartMosquitto(t)) })
}

func moduleProcess(t *testing.T, bin, brokerURL string) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	certsRoot := filepath.Join(prefix, "etc", "everest", "certs")
	p, _ := writePKI(t, certsRoot, testpki.Options{})
	schemas := everesttest.LoadSchemas(t)
	mgr := everesttest.StartManager(t, everesttest.ManagerOptions{URL: brokerURL})
	topics := everest.NewTopics("everest/", "evse_security", "main")
	ocpp := everesttest.NewCaller(t, brokerURL, topics, "ocpp")

	var errb bytes.Buffer
	cmd := &exec.Cmd{Path: bin, Args: managerArgv(prefix, u.Port()), Stderr: &errb, Stdout: &errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	if got := mgr.WaitReady(t, 20*time.Second); got != `{"msg_type":"ModuleReady","data":true}` {
		t.Errorf("ModuleReady %s", got)
	}
	if reqs := mgr.ConfigRequests(); len(reqs) == 0 || reqs[0] != `{"msg_type":"GetConfig","data":{"type":"Get","origin":"evse_security","request":{"type":"Module"}}}` {
		t.Errorf("config requests %q", reqs)
	}
	call := func(cmd string, args any) json.RawMessage {
		t.Helper()
		r, err := ocpp.Call(cmd, args)
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, errb.String())
		}
		if r.Error != nil {
			t.Fatalf("%s: error %+v", cmd, r.Error)
		}
		if err := schemas.ValidateResult(cmd, r.Retval); err != nil {
			t.Errorf("%s: %s: %v", cmd, r.Retval, err)
		}
		return r.Retval
	}
	if got, want := string(call("get_verify_file", map[string]any{"certificate_type": "V2G"})), fmt.Sprintf("%q", filepath.Join(certsRoot, "ca/v2g/V2G_ROOT_CA.pem")); got != want {
		t.Errorf("get_verify_file %s, want %s", got, want)
	}
	if got := string(call("is_ca_certificate_installed", map[string]any{"certificate_type": "CSMS"})); got != "true" {
		t.Errorf("is_ca_certificate_installed %s", got)
	}
	var info struct {
		Status string `json:"status"`
		Info   struct {
			Key string `json:"key"`
		} `json:"info"`
	}
	if err := json.Unmarshal(call("get_leaf_certificate_info", map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": false}), &info); err != nil ||
		info.Status != "Accepted" || info.Info.Key != filepath.Join(certsRoot, "client/csms/CSMS_LEAF.key") {
		t.Errorf("get_leaf_certificate_info %+v, %v", info, err)
	}
	ocpp.DrainVars()
	rootPEM, err := os.ReadFile(filepath.Join(certsRoot, "ca", "mo", "MO_ROOT_CA.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(call("install_ca_certificate", map[string]any{"certificate": string(p.MOSubCA1.CertPEM()), "certificate_type": "MO"})); got != `"Accepted"` {
		t.Errorf("install_ca_certificate %s", got)
	}
	if v, err := ocpp.WaitVar(10 * time.Second); err != nil || string(v.Payload) != `{"msg_type":"Var","data":{"data":{"operation":"Installed","ca_certificate_type":"MO"}}}` {
		t.Errorf("certificate_store_update %s, %v", v.Payload, err)
	} else if err := schemas.ValidateVar(everest.StoreUpdateVar, v.Value); err != nil {
		t.Errorf("certificate_store_update %s: %v", v.Value, err)
	}
	if now, err := os.ReadFile(filepath.Join(certsRoot, "ca", "mo", "MO_ROOT_CA.pem")); err != nil || len(now) <= len(rootPEM) {
		t.Errorf("the MO bundle under <prefix>/etc/everest/certs did not grow: %v", err)
	}
	r, err := ocpp.Call("install_ca_certificate", map[string]any{"certificate": "x", "certificate_type": "XX"})
	if err != nil || r.Error == nil || r.Error.Type != everest.SchemaValidationError {
		t.Errorf("bad argument: %s, %v", r.Payload, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM:\n%s", code, errb.String())
	}
	if strings.Contains(errb.String(), "123456") {
		t.Error("the log shows a password")
	}
}

// Started by the manager with no broker to reach, the module exits non-zero with a clear message.
func TestModuleProcessNoBroker(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
	var errb bytes.Buffer
	cmd := &exec.Cmd{Path: bin, Args: managerArgv(t.TempDir(), fmt.Sprint(freePort(t))), Stderr: &errb}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 20*time.Second); code != 1 || !strings.Contains(errb.String(), "connect to MQTT broker tcp://127.0.0.1:") {
		t.Errorf("exit %d:\n%s", code, errb.String())
	}
}
