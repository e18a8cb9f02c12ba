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

// FuzzLegacyWire feeds the decoders of the older wires arbitrary payloads on their shared
// topics: none panics, and a call that decodes encodes back (as a caller writes it) to a
// message that decodes to the same call.
func FuzzLegacyWire(f *testing.F) {
	for _, dir := range []string{"v0.24", "v0.21", "v0.20", "v0.19"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "generations", dir, "*.json"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte(`{"data":{"args":null,"id":7,"origin":"x"},"name":"n","type":"call"}`))
	f.Add([]byte(`{"data":{"error":{"event":"Nope"},"id":"1","origin":"m"},"name":"n","type":"result"}`))
	tp := NewTopics("", "", "")
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, w := range []Wire{V022, V019, V017} {
			name, c, ok, err := w.DecodeCall(tp, tp.CmdShared(), payload)
			if ok && err == nil {
				if name == "" || c.Origin == "" {
					t.Fatalf("%s: decoded a call without a name or origin", w.Name())
				}
				_, msg, err := w.Call(tp, name, c.ID, c.Origin, c.Args)
				if err != nil {
					if len(c.Args) == 0 || json.Valid(c.Args) {
						t.Fatalf("%s: a decoded call does not encode: %v", w.Name(), err)
					}
					continue
				}
				n2, c2, ok2, err2 := w.DecodeCall(tp, tp.CmdShared(), msg)
				if !ok2 || err2 != nil || n2 != name || c2.ID != c.ID || c2.Origin != c.Origin || (len(c.Args) > 0 && !fuzzSameJSON(c2.Args, c.Args)) {
					t.Fatalf("%s: round trip: %q %+v became %q %+v (%v)", w.Name(), name, c, n2, c2, err2)
				}
			}
			if r, ok, err := w.DecodeResult(tp, tp.CmdShared(), payload); ok && err == nil && r.Error == nil && len(r.Retval) > 0 {
				if _, msg, err := w.Result(tp, "n", Cmd{ID: r.ID}, r.Retval, nil); err == nil {
					again, _, err := w.DecodeResult(tp, tp.CmdShared(), msg)
					if err != nil || again.ID != r.ID || !fuzzSameJSON(again.Retval, r.Retval) {
						t.Fatalf("%s: round trip of a result: %+v became %+v (%v)", w.Name(), r, again, err)
					}
				}
			}
			w.DecodeVar(tp, StoreUpdateVar, tp.VarShared(), payload)
			w.ParseConfig(tp, payload)
			w.IsGlobalReady(payload)
		}
	})
}

// FuzzEncodeResult checks that the result message written around its retval (resultAround) is
// the message json.Marshal makes, byte for byte, for any retval, id and origin: either EncodeResult
// takes that path and the bytes agree, or it marshals.
func FuzzEncodeResult(f *testing.F) {
	for _, r := range encodeResultCases {
		f.Add(r.id, r.origin, []byte(r.retval))
	}
	f.Fuzz(func(t *testing.T, id, origin string, retval []byte) {
		got, err := EncodeResult(id, origin, retval)
		r := json.RawMessage(retval)
		if len(r) == 0 {
			r = json.RawMessage("null")
		}
		want, werr := marshalledResult(id, origin, r)
		if (err != nil) != (werr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("EncodeResult(%q, %q, %q) = %q, %v; json.Marshal gives %q, %v", id, origin, retval, got, err, want, werr)
		}
	})
}
