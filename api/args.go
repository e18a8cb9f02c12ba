package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// ArgError reports arguments that do not fit the interface: malformed JSON, a missing required
// argument, a value of the wrong JSON type or outside its enum. No store operation runs when the
// arguments are wrong.
type ArgError struct {
	Command string
	Arg     string // empty when the whole argument object is wrong
	Reason  string
}

// BadArgument names the wrong argument; "" when the argument object as a whole is wrong. It
// lets a transport classify the error without knowing this type.
func (e *ArgError) BadArgument() string { return e.Arg }

func (e *ArgError) Error() string {
	if e.Arg == "" {
		return fmt.Sprintf("%s: %s", e.Command, e.Reason)
	}
	return fmt.Sprintf("%s: argument %q: %s", e.Command, e.Arg, e.Reason)
}

// args decodes one command's argument object. The first problem is kept; later reads return
// zero values, so a handler can read all its arguments and check err once.
type args struct {
	command string
	params  []Param
	raw     map[string]json.RawMessage
	err     *ArgError
}

func parseArgs(command string, data json.RawMessage, params []Param) (*args, error) {
	a := &args{command: command, params: params, raw: map[string]json.RawMessage{}}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")) {
		return a, nil
	}
	if err := json.Unmarshal(trimmed, &a.raw); err != nil {
		return nil, &ArgError{Command: command, Reason: "arguments are not a JSON object: " + err.Error()}
	}
	return a, nil
}

// failed reports whether any argument was wrong; handlers check it before touching the store.
func (a *args) failed() bool { return a.err != nil }

func (a *args) fail(name, reason string) {
	if a.err == nil {
		a.err = &ArgError{Command: a.command, Arg: name, Reason: reason}
	}
}

// plainString returns the value of a JSON string literal that needs no decoding: no escapes, no
// control characters, valid UTF-8. The enum and path arguments of every call are such strings,
// and taking them as they are spares a reflective decode per argument; anything else goes the
// long way and gets the same value.
func plainString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(body), true
}

// text decodes string argument name; ok is false when it is absent (or JSON null) or not a
// string (then the argument's failure is recorded).
func (a *args) text(name string) (string, bool) {
	a.declared(name)
	if raw, ok := a.raw[name]; ok {
		if s, ok := plainString(raw); ok {
			return s, true
		}
	}
	var s string
	ok := a.value(name, &s)
	return s, ok
}

// absent reports whether argument name is missing or JSON null: both mean "not given".
func (a *args) absent(name string) bool {
	raw, ok := a.raw[name]
	return !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// checkRequired fails on the first required argument of the command's table row that is absent
// or null, whatever its type.
func (a *args) checkRequired() error {
	for _, p := range a.params {
		if p.Required && a.absent(p.Name) {
			a.fail(p.Name, "missing required argument")
			return a.err
		}
	}
	return nil
}

// declared panics when a handler reads an argument its table row does not declare: the table
// is what the required-argument check and the interface test rely on, so it must be complete.
// The dispatcher turns the panic into an error.
func (a *args) declared(name string) {
	for _, p := range a.params {
		if p.Name == name {
			return
		}
	}
	panic(fmt.Sprintf("argument %q is not declared in the command table", name))
}

// value decodes argument name into v; ok is false when it is absent (or JSON null). Required
// arguments were checked before the handler ran, so absent here means an optional one.
func (a *args) value(name string, v any) bool {
	a.declared(name)
	if a.absent(name) {
		return false
	}
	raw := a.raw[name]
	if err := json.Unmarshal(raw, v); err != nil {
		a.fail(name, "wrong type: "+jsonTypeError(err))
		return false
	}
	return true
}

func jsonTypeError(err error) string {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("want %s, got %s", te.Type, te.Value)
	}
	return err.Error()
}

// str reads a string argument. An empty string is a valid value; the store decides what it
// means.
func (a *args) str(name string) string {
	s, _ := a.text(name)
	return s
}

// boolean reads a boolean argument. The interface's flags are all required: the table says so,
// and the dispatcher refuses a call without them before this runs.
func (a *args) boolean(name string) bool {
	a.declared(name)
	switch string(a.raw[name]) {
	case "true":
		return true
	case "false":
		return false
	}
	var b bool
	a.value(name, &b)
	return b
}

func oneOf[T ~string](a *args, name string, v T, valid bool, values []T) T {
	if !valid {
		names := make([]string, len(values))
		for i, x := range values {
			names[i] = string(x)
		}
		a.fail(name, fmt.Sprintf("%q is not one of %s", v, strings.Join(names, ", ")))
	}
	return v
}

var (
	caTypeValues       = []store.CAType{store.CAV2G, store.CAMO, store.CACSMS, store.CAMF}
	leafTypeValues     = []store.LeafType{store.LeafCSMS, store.LeafV2G, store.LeafMF, store.LeafMO}
	certTypeValues     = []store.CertificateType{store.V2GRootCertificate, store.MORootCertificate, store.CSMSRootCertificate, store.V2GCertificateChain, store.MFRootCertificate}
	encodingValues     = []store.EncodingFormat{store.EncodingDER, store.EncodingPEM}
	hashAlgorithmNames = []certs.HashAlgorithm{certs.SHA256, certs.SHA384, certs.SHA512}
)

func (a *args) caType(name string) store.CAType {
	v, ok := a.text(name)
	t := store.CAType(v)
	if !ok {
		return t
	}
	return oneOf(a, name, t, t.Valid(), caTypeValues)
}

func (a *args) leafType(name string) store.LeafType {
	v, ok := a.text(name)
	t := store.LeafType(v)
	if !ok {
		return t
	}
	return oneOf(a, name, t, t.Valid(), leafTypeValues)
}

func (a *args) encoding(name string) store.EncodingFormat {
	v, ok := a.text(name)
	e := store.EncodingFormat(v)
	if !ok {
		return e
	}
	return oneOf(a, name, e, e.Valid(), encodingValues)
}

func (a *args) leafTypes(name string) []store.LeafType {
	var ts []store.LeafType
	if !a.value(name, &ts) {
		return nil
	}
	for _, t := range ts {
		oneOf(a, name, t, t.Valid(), leafTypeValues)
	}
	return ts
}

func (a *args) certTypes(name string) []store.CertificateType {
	var ts []store.CertificateType
	if !a.value(name, &ts) {
		return nil
	}
	for _, t := range ts {
		oneOf(a, name, t, t.Valid(), certTypeValues)
	}
	return ts
}

// hashData reads a CertificateHashData object: all four fields required, the algorithm one of
// the enum. The hash strings are not judged here; one that names no certificate simply matches
// nothing.
func (a *args) hashData(name string) certs.HashData {
	var h struct {
		Algorithm      *string `json:"hash_algorithm"`
		IssuerNameHash *string `json:"issuer_name_hash"`
		IssuerKeyHash  *string `json:"issuer_key_hash"`
		SerialNumber   *string `json:"serial_number"`
	}
	if !a.value(name, &h) {
		return certs.HashData{}
	}
	for field, v := range map[string]*string{"hash_algorithm": h.Algorithm, "issuer_name_hash": h.IssuerNameHash, "issuer_key_hash": h.IssuerKeyHash, "serial_number": h.SerialNumber} {
		if v == nil {
			a.fail(name, "missing required field "+field)
			return certs.HashData{}
		}
	}
	alg := certs.HashAlgorithm(*h.Algorithm)
	valid := alg == certs.SHA256 || alg == certs.SHA384 || alg == certs.SHA512
	oneOf(a, name+".hash_algorithm", alg, valid, hashAlgorithmNames)
	return certs.HashData{Algorithm: alg, IssuerNameHash: *h.IssuerNameHash, IssuerKeyHash: *h.IssuerKeyHash, SerialNumber: *h.SerialNumber}
}
