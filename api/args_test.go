package api

import (
	"encoding/json"
	"testing"
)

// plainString takes a string argument as it is only when decoding could not change it; for
// everything else it declines and the argument is decoded. Where it accepts, the value is what
// encoding/json decodes.
func TestPlainStringAgreesWithDecoding(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		accept bool
	}{
		{`"V2G"`, true}, {`""`, true}, {`"/etc/everest/certs/ca/v2g/V2G_ROOT_CA.pem"`, true},
		{`"a\"b"`, false}, {`"a\\b"`, false}, {`"\u0056"`, false}, {`"é"`, false}, {"\"a\tb\"", false},
		{`"\xff"`, false}, {`5`, false}, {`null`, false}, {`"unterminated`, false}, {`"`, false}, {`true`, false},
	} {
		got, ok := plainString(json.RawMessage(tc.raw))
		if ok != tc.accept {
			t.Errorf("plainString(%s) accepted %v, want %v", tc.raw, ok, tc.accept)
		}
		if ok {
			var want string
			if err := json.Unmarshal([]byte(tc.raw), &want); err != nil || got != want {
				t.Errorf("plainString(%s) = %q; decoding gives %q (%v)", tc.raw, got, want, err)
			}
		}
	}
}

func FuzzPlainString(f *testing.F) {
	for _, s := range []string{`"V2G"`, `"a\"b"`, `"é"`, `""`, `"\u0041"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := plainString(raw)
		if !ok {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("plainString(%q) = %q; decoding gives %q (%v)", raw, got, want, err)
		}
	})
}
