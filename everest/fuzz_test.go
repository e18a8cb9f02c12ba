package everest

// Fuzz targets of the EVerest wire: the envelope decoders every MQTT message of the framework
// goes through, and the manager's config response with its mapping onto the store's config.
// Seeds are the golden messages of testdata/wire; the committed corpus is in testdata/fuzz/, and
// scripts/fuzz-ci.sh runs each target for a bounded time.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fuzzWireSeeds adds every golden message of testdata/wire.
func fuzzWireSeeds(f *testing.F) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "wire", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{"", "null", "{}", "[]", `{"msg_type":"Cmd"}`, `{"msg_type":"Cmd","data":{"id":7,"origin":["x"]}}`,
		`{"msg_type":"CmdResult","data":{"type":"result","data":{"id":"1","retval":{"a":1},"origin":"m"}}}`,
		`{"msg_type":"Var","data":{"data":{"operation":"Installed"}}}`, `{"msg_type":"ModuleReady","data":"true"}`, "\x00{"} {
		f.Add([]byte(s))
	}
}

// fuzzSameJSON reports whether a and b are the same JSON value (encoding/json escapes <, > and &
// when it re-encodes, which changes the bytes but not the value).
func fuzzSameJSON(a, b []byte) bool {
	var va, vb any
	ea, eb := json.Unmarshal(a, &va), json.Unmarshal(b, &vb)
	if ea != nil || eb != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// FuzzDecodeEnvelope feeds every decoder of the wire arbitrary payloads: none panics, and a
// command or result that decodes encodes back to the same values.
func FuzzDecodeEnvelope(f *testing.F) {
	fuzzWireSeeds(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		if e, err := Decode(payload); err == nil && e.MsgType == "" {
			t.Fatal("decoded an envelope without a msg_type")
		}
		if c, err := DecodeCmd(payload); err == nil {
			if c.Origin == "" {
				t.Fatal("decoded a command without an origin")
			}
			msg, err := EncodeCmd(c.ID, c.Origin, c.Args)
			if err != nil {
				if json.Valid(c.Args) || len(c.Args) == 0 {
					t.Fatalf("a decoded command does not encode: %v", err)
				}
				return
			}
			again, err := DecodeCmd(msg)
			if err != nil {
				t.Fatalf("a re-encoded command does not decode: %v", err)
			}
			if again.ID != c.ID || again.Origin != c.Origin || (len(c.Args) > 0 && !fuzzSameJSON(again.Args, c.Args)) {
				t.Fatalf("round trip: %+v became %+v", c, again)
			}
		}
		if r, err := DecodeResult(payload); err == nil && r.Error == nil && len(r.Retval) > 0 {
			msg, err := EncodeResult(r.ID, r.Origin, r.Retval)
			if err != nil {
				return
			}
			again, err := DecodeResult(msg)
			if err != nil || again.ID != r.ID || !fuzzSameJSON(again.Retval, r.Retval) {
				t.Fatalf("round trip of a result: %+v became %+v (%v)", r, again, err)
			}
		}
		DecodeVar(payload)
		DecodeBool(payload, MsgModuleReady)
		DecodeBool(payload, MsgGlobalReady)
	})
}

// FuzzParseConfigResponse feeds the manager's config answer of every generation arbitrary
// payloads: nothing panics. (The mapping onto the store's config lives in cmd/evsesec now.)
func FuzzParseConfigResponse(f *testing.F) {
	fuzzWireSeeds(f)
	f.Add([]byte(`{"msg_type":"GetConfigResponse","data":{"response":{"data":{"module_config":{"module_id":"evse_security","configuration_parameters":{"!module":{"private_key_password":"x","max_fs_usage_bytes":-1,"csr_expiry":"1h"}}}}}}}`))
	f.Add([]byte(`{"msg_type":"GetConfigResponse","data":{"response":{"data":{"module_config":{"configuration_parameters":{"!module":[{"name":"v2g_ca_bundle","value":7}]}}}}}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		etcDirOfSettings(payload)
		shapeOf(payload)
		for _, w := range Wires() {
			if mc, err := w.ParseConfig(NewTopics("", "", ""), payload); err == nil && mc.Params == nil {
				t.Errorf("%s: parsed config without parameters", w.Name())
			}
		}
	})
}
