package everest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodeResultCases are results of every kind: what the dispatcher returns (compact, escaped),
// and what only another handler could return (spaces, line breaks, characters json.Marshal
// escapes, invalid JSON).
var encodeResultCases = []struct {
	name, id, origin, retval string
	around                   bool // EncodeResult writes the message around retval
}{
	{"dispatcher's object", "3c4b1e0a-1", "auth", `{"status":"Ok","info":{"certificate":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n","key":"/etc/everest/certs/client/cso/SECC_LEAF.key"}}`, true},
	{"string", "1", "ocpp", `"Accepted"`, true},
	{"boolean", "1", "ocpp", `false`, true},
	{"null", "", "", `null`, true},
	{"escaped by json.Marshal", "a\"b<", "o&p", `"\u003c\u0026\u003e \u2028"`, true},
	{"space between tokens", "1", "ocpp", `{"a": 1}`, false},
	{"line break between tokens", "1", "ocpp", "[1,\n2]", false},
	{"tab between tokens", "1", "ocpp", "[1,\t2]", false},
	{"leading space", "1", "ocpp", ` "x"`, false},
	{"raw less-than in a string", "1", "ocpp", `"<b>"`, false},
	{"raw ampersand in a string", "1", "ocpp", `"a&b"`, false},
	{"raw U+2028 in a string", "1", "ocpp", "\"a\u2028b\"", false},
	{"raw U+2029 in a string", "1", "ocpp", "\"a\u2029b\"", false},
	{"other U+20xx in a string", "1", "ocpp", "\"a\u2020b\"", true},
	{"escaped quote then space", "1", "ocpp", `["a\" b", "c"]`, false},
	{"escaped backslash then quote", "1", "ocpp", `["a\\"," b"]`, true},
	{"invalid JSON", "1", "ocpp", `{not json`, false},
}

// marshalledResult is the CmdResult message as json.Marshal makes it, retval and all.
func marshalledResult(id, origin string, retval json.RawMessage) ([]byte, error) {
	return encode(MsgCmdResult, CmdResult{Type: "result", Data: CmdResultValues{ID: id, Retval: retval, Origin: origin}})
}

// TestEncodeResultAround checks which results are written around and which are marshalled, and
// that both give json.Marshal's bytes.
func TestEncodeResultAround(t *testing.T) {
	for _, c := range encodeResultCases {
		t.Run(c.name, func(t *testing.T) {
			r := json.RawMessage(c.retval)
			around := json.Valid(r) && compactEscaped(r)
			if around != c.around {
				t.Errorf("written around %q: %v, want %v", c.retval, around, c.around)
			}
			got, err := EncodeResult(c.id, c.origin, r)
			want, werr := marshalledResult(c.id, c.origin, r)
			if (err != nil) != (werr != nil) || !bytes.Equal(got, want) {
				t.Errorf("EncodeResult = %s, %v; json.Marshal gives %s, %v", got, err, want, werr)
			}
		})
	}
}
