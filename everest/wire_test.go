package everest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// golden reads testdata/wire/name: the exact JSON of the protocol note's examples (§1.3–§1.7,
// §4.3), one message per file.
func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wire", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncodeGolden pins the bytes the module sends. A change of the upstream wire shows up here.
func TestEncodeGolden(t *testing.T) {
	type installArgs struct {
		Certificate     string `json:"certificate"`
		CertificateType string `json:"certificate_type"`
	}
	leafInfo := store.CertificateInfoResult{Status: store.InfoAccepted, Info: &store.CertificateInfo{
		Key:               "/etc/everest/certs/client/cso/SECC_LEAF.key",
		Certificate:       "/etc/everest/certs/client/cso/CPO_CERT_CHAIN.pem",
		CertificateSingle: "/etc/everest/certs/client/cso/SECC_LEAF.pem",
		CertificateCount:  3,
		Password:          "123456",
		OCSP: []store.CertificateOCSP{{
			Hash:     certs.HashData{Algorithm: certs.SHA256, IssuerNameHash: "a1b2...", IssuerKeyHash: "c3d4...", SerialNumber: "1f2e3d"},
			OCSPPath: "/etc/everest/certs/ca/v2g/ocsp/....ocsp.der",
		}},
	}}
	tests := []struct {
		golden string
		encode func() ([]byte, error)
	}{
		{"cmd_install_ca_certificate.json", func() ([]byte, error) {
			args := mustJSON(t, installArgs{"-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n", "CSMS"})
			return EncodeCmd("0b9d3c2e-6f4a-4c4b-9a57-1f0e2d3c4b5a", "ocpp", args)
		}},
		{"result_install_ca_certificate.json", func() ([]byte, error) {
			return EncodeResult("0b9d3c2e-6f4a-4c4b-9a57-1f0e2d3c4b5a", "evse_security", mustJSON(t, store.InstallAccepted))
		}},
		{"result_no_retval.json", func() ([]byte, error) {
			return EncodeResult("0b9d3c2e-6f4a-4c4b-9a57-1f0e2d3c4b5a", "evse_security", nil)
		}},
		{"var_certificate_store_update.json", func() ([]byte, error) {
			return EncodeVar(api.StoreUpdateOf(store.Event{Kind: store.EventInstall, Operation: store.OperationInstalled, CAType: store.CACSMS}))
		}},
		{"var_certificate_store_update_leaf.json", func() ([]byte, error) {
			return EncodeVar(api.StoreUpdateOf(store.Event{Kind: store.EventDelete, Operation: store.OperationDeleted, LeafType: store.LeafV2G}))
		}},
		{"cmd_get_leaf_certificate_info.json", func() ([]byte, error) {
			args := json.RawMessage(`{"certificate_type":"V2G","encoding":"PEM","include_ocsp":true}`)
			return EncodeCmd("5e1a7f40-2b61-4d0e-8c3a-77aa01b2c3d4", "iso15118_charger", args)
		}},
		{"result_get_leaf_certificate_info.json", func() ([]byte, error) {
			return EncodeResult("5e1a7f40-2b61-4d0e-8c3a-77aa01b2c3d4", "evse_security", mustJSON(t, leafInfo))
		}},
		{"cmd_verify_certificate.json", func() ([]byte, error) {
			args := json.RawMessage(`{"certificate_chain":"-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n","certificate_types":["CSMS"]}`)
			return EncodeCmd("9c0f1e2d-3b4a-4c5d-8e6f-708192a3b4c5", "ocpp", args)
		}},
		{"result_verify_certificate.json", func() ([]byte, error) {
			return EncodeResult("9c0f1e2d-3b4a-4c5d-8e6f-708192a3b4c5", "evse_security", mustJSON(t, store.ValidationValid))
		}},
		{"result_error.json", func() ([]byte, error) {
			return EncodeError("9c0f1e2d-3b4a-4c5d-8e6f-708192a3b4c5", "evse_security", &CmdError{Type: HandlerException, Message: "store locked: ..."})
		}},
		{"get_config.json", func() ([]byte, error) { return EncodeGetConfig("evse_security") }},
		{"module_ready.json", EncodeModuleReady},
		{"global_ready.json", EncodeGlobalReady},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := tc.encode()
			if err != nil {
				t.Fatal(err)
			}
			if want := golden(t, tc.golden); string(got) != want {
				t.Errorf("encoded\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestDecodeGolden(t *testing.T) {
	cmd, err := DecodeCmd([]byte(golden(t, "cmd_install_ca_certificate.json")))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.ID != "0b9d3c2e-6f4a-4c4b-9a57-1f0e2d3c4b5a" || cmd.Origin != "ocpp" || !strings.Contains(string(cmd.Args), `"certificate_type":"CSMS"`) {
		t.Errorf("DecodeCmd = %+v", cmd)
	}

	res, err := DecodeResult([]byte(golden(t, "result_get_leaf_certificate_info.json")))
	if err != nil {
		t.Fatal(err)
	}
	var info store.CertificateInfoResult
	if err := json.Unmarshal(res.Retval, &info); err != nil || info.Status != store.InfoAccepted || info.Info.CertificateCount != 3 || res.Origin != "evse_security" || res.Error != nil {
		t.Errorf("DecodeResult = %+v (%v)", res, err)
	}

	res, err = DecodeResult([]byte(golden(t, "result_error.json")))
	if err != nil || res.Error == nil || res.Error.Type != HandlerException || res.Error.Message != "store locked: ..." || res.Retval != nil {
		t.Errorf("DecodeResult(error) = %+v, %v", res, err)
	}

	v, err := DecodeVar([]byte(golden(t, "var_certificate_store_update.json")))
	if err != nil || string(v) != `{"operation":"Installed","ca_certificate_type":"CSMS"}` {
		t.Errorf("DecodeVar = %s, %v", v, err)
	}

	for _, tc := range []struct {
		file string
		t    MsgType
	}{{"module_ready.json", MsgModuleReady}, {"global_ready.json", MsgGlobalReady}} {
		if ok, err := DecodeBool([]byte(golden(t, tc.file)), tc.t); err != nil || !ok {
			t.Errorf("DecodeBool(%s) = %v, %v", tc.file, ok, err)
		}
	}

	mc, err := ParseConfigResponse([]byte(golden(t, "get_config_response.json")))
	if err != nil {
		t.Fatal(err)
	}
	if mc.ModuleID != "evse_security" || mc.ModuleName != "EvseSecurity" || len(mc.Params) != 2 ||
		string(mc.Params["private_key_password"]) != `"123456"` || string(mc.Params["csms_ca_bundle"]) != `"ca/csms/CSMS_ROOT_CA.pem"` {
		t.Errorf("ParseConfigResponse = %+v", mc)
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]byte("not json")); !errors.Is(err, ErrNotEnvelope) {
		t.Errorf("Decode(not json) = %v", err)
	}
	if e, err := Decode([]byte(`{"x":1}`)); err != nil || e.MsgType != MsgExternalMQTT {
		t.Errorf("Decode without msg_type = %+v, %v; want ExternalMQTT", e, err)
	}
	// A call whose data cannot be read still names whom to answer.
	cmd, err := DecodeCmd([]byte(`{"msg_type":"Cmd","data":{"id":"a","origin":"ocpp","args":{"x":1},"extra":[1,}}`))
	if err == nil {
		t.Fatal("DecodeCmd accepted broken JSON")
	}
	cmd, err = DecodeCmd([]byte(`{"msg_type":"Cmd","data":{"id":"a","origin":"ocpp","args":5}}`))
	if err != nil || cmd.ID != "a" || string(cmd.Args) != "5" {
		t.Errorf("DecodeCmd(args 5) = %+v, %v (the handler judges the arguments)", cmd, err)
	}
	cmd, err = DecodeCmd([]byte(`{"msg_type":"Cmd","data":{"id":7,"origin":"ocpp"}}`))
	if err == nil || cmd.Origin != "ocpp" {
		t.Errorf("DecodeCmd(id 7) = %+v, %v; want an error that keeps the origin", cmd, err)
	}
	if _, err := DecodeCmd([]byte(`{"msg_type":"Cmd","data":{"id":"a","args":{}}}`)); err == nil {
		t.Error("DecodeCmd without origin: no error")
	}
	if cmd, err := DecodeCmd([]byte(`{"msg_type":"Var","data":{"id":"a","origin":"ocpp"}}`)); err == nil || cmd.Origin != "ocpp" {
		t.Errorf("DecodeCmd(Var) = %+v, %v", cmd, err)
	}
	if _, err := DecodeResult([]byte(golden(t, "module_ready.json"))); err == nil {
		t.Error("DecodeResult(ModuleReady): no error")
	}
	if _, err := DecodeVar([]byte(golden(t, "module_ready.json"))); err == nil {
		t.Error("DecodeVar(ModuleReady): no error")
	}
	if _, err := DecodeBool([]byte(golden(t, "module_ready.json")), MsgGlobalReady); err == nil {
		t.Error("DecodeBool(ModuleReady as GlobalReady): no error")
	}
}

func TestErrorTypeOf(t *testing.T) {
	tests := []struct {
		err  error
		want ErrorType
	}{
		{&api.ArgError{Command: "x", Reason: "arguments are not a JSON object"}, MessageParsingError},
		{&api.ArgError{Command: "x", Arg: "certificate_type", Reason: "not one of"}, SchemaValidationError},
		{api.ErrUnknownCommand, HandlerException},
		{errors.New("boom"), HandlerException},
		{&CmdError{Type: NotReady, Message: "later"}, NotReady},
	}
	for _, tc := range tests {
		if got := ErrorTypeOf(tc.err); got != tc.want {
			t.Errorf("ErrorTypeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

func TestTopics(t *testing.T) {
	tp := NewTopics("everest", "", "")
	tests := map[string]string{
		tp.ConfigRequest():                                    "everest/config/request",
		tp.ConfigResponse():                                   "everest/modules/evse_security/response",
		tp.ModuleReady():                                      "everest/modules/evse_security/ready",
		tp.GlobalReady():                                      "everest/ready",
		tp.Settings():                                         "everest/settings",
		tp.ModuleNames():                                      "everest/module_names",
		tp.Cmd("get_verify_file"):                             "everest/modules/evse_security/impl/main/cmd/get_verify_file",
		tp.CmdSubscription():                                  "everest/modules/evse_security/impl/main/cmd/+",
		tp.CmdResponse("get_verify_file", "ocpp"):             "everest/modules/evse_security/impl/main/cmd/get_verify_file/response/ocpp",
		tp.CmdResponseSubscription("ocpp"):                    "everest/modules/evse_security/impl/main/cmd/+/response/ocpp",
		tp.Var(StoreUpdateVar):                                "everest/modules/evse_security/impl/main/var/certificate_store_update",
		NewTopics("ev/", "sec", "impl2").Cmd("x"):             "ev/modules/sec/impl/impl2/cmd/x",
		NewTopics("", "", "").Prefix:                          "everest/",
		NewTopics("a/b", "m", "").CmdResponse("c", "origin1"): "a/b/modules/m/impl/main/cmd/c/response/origin1",
	}
	for got, want := range tests {
		if got != want {
			t.Errorf("topic %q, want %q", got, want)
		}
	}
	for topic, want := range map[string]string{
		"everest/modules/evse_security/impl/main/cmd/get_verify_file":               "get_verify_file",
		"everest/modules/evse_security/impl/main/cmd/get_verify_file/response/ocpp": "",
		"everest/modules/evse_security/impl/main/var/certificate_store_update":      "",
		"everest/modules/other/impl/main/cmd/get_verify_file":                       "",
		"everest/modules/evse_security/impl/main/cmd/":                              "",
	} {
		got, ok := tp.CmdName(topic)
		if got != want || ok != (want != "") {
			t.Errorf("CmdName(%s) = %q, %v; want %q", topic, got, ok, want)
		}
	}
}

// encode writes the envelope around the marshalled data; the bytes are exactly those of
// marshalling the envelope, for every message kind and for data that needs escaping.
func TestEncodeIsEnvelopeMarshal(t *testing.T) {
	for _, tc := range []struct {
		t    MsgType
		data any
	}{
		{MsgCmdResult, CmdResult{Type: "result", Data: CmdResultValues{ID: "id<&>", Retval: json.RawMessage(`{"a": "<b>\u2028", "c": [1, 2]}`), Origin: "evse_security"}}},
		{MsgCmdResult, CmdResult{Type: "result", Data: CmdResultValues{ID: "x", Origin: "o", Error: &CmdError{Type: HandlerException, Message: "bad \"input\" <here>"}}}},
		{MsgCmd, Cmd{ID: "1", Args: json.RawMessage(" { } "), Origin: "caller"}},
		{MsgVar, VarData{Data: json.RawMessage(`{"operation":"Installed"}`)}},
		{MsgModuleReady, true},
		{MsgType("odd\"<type>"), nil},
	} {
		raw, err := json.Marshal(tc.data)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(Envelope{MsgType: tc.t, Data: raw})
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(tc.t, tc.data)
		if err != nil || string(got) != string(want) {
			t.Errorf("encode(%s) = %s, %v\nwant %s", tc.t, got, err, want)
		}
	}
}
