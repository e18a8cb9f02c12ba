package everest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Wire is one framework generation's encoding of the module protocol: which topics carry what,
// and the exact bytes of every message a module and its callers exchange. The runner, the caller
// and the detection know messages only through a Wire, so the command dispatch and the store
// never learn which generation carried a call.
//
// There is one implementation per generation (see Wires): the v0.25 envelope (wire.go), and the
// older un-enveloped wires of v0.17 to v0.24 (wire_legacy.go), which differ only in how the
// module gets its config and whether a caller can receive an error result.
type Wire interface {
	// Name is the wire's name, as --everest-wire takes it ("v0.25", "v0.22-v0.24", ...).
	Name() string
	// Layout returns t in this generation's topic layout (Topics.Flat for v0.17, v0.18).
	Layout(t Topics) Topics
	// Releases names the everest-core releases whose manager speaks it, for logs.
	Releases() string

	// CmdFilter is the subscription that receives the implementation's calls.
	CmdFilter(t Topics) string
	// DecodeCall reads a message from CmdFilter. ok is false for a message that is not a call
	// and needs no answer (on the older wires the results share the call topic). With err set,
	// name and c hold what could be read, so that the caller can still be answered.
	DecodeCall(t Topics, topic string, payload []byte) (name string, c Cmd, ok bool, err error)
	// Result is the reply to call c of command name: the result, or the error when e is set.
	Result(t Topics, name string, c Cmd, retval json.RawMessage, e *CmdError) (topic string, msg []byte, err error)
	// CarriesErrors reports whether this generation's callers understand an error result. The
	// runner answers a failed call with the command's fallback result where they do not.
	CarriesErrors() bool
	// Var is the message publishing variable name with value.
	Var(t Topics, name string, value any) (topic string, msg []byte, err error)
	// ModuleReady is the module's ready signal (on t.ModuleReady()).
	ModuleReady() []byte
	// IsGlobalReady reports whether payload (on t.GlobalReady()) is the manager's global ready.
	IsGlobalReady(payload []byte) bool
	// Metadata is the module's metadata message; topic "" when the module sends none.
	Metadata(t Topics, moduleName string) (topic string, msg []byte)

	// ConfigRequest is how the module asks the manager for its config: the request and the
	// topic of the answer. request is "" when the manager sends no config over MQTT (the module
	// reads the config file).
	ConfigRequest(t Topics) (request string, msg []byte, response string)
	// ParseConfig reads the manager's answer to ConfigRequest.
	ParseConfig(t Topics, payload []byte) (ModuleConfig, error)

	// Call is a caller's message calling command name.
	Call(t Topics, name, id, origin string, args json.RawMessage) (topic string, msg []byte, err error)
	// ResultFilter is the subscription on which caller origin receives its results.
	ResultFilter(t Topics, origin string) string
	// DecodeResult reads a message from ResultFilter; ok is false for one that is not a result.
	DecodeResult(t Topics, topic string, payload []byte) (r CmdResultValues, ok bool, err error)
	// VarFilter is the subscription that receives variable name.
	VarFilter(t Topics, name string) string
	// DecodeVar reads a message from VarFilter; ok is false for another variable's.
	DecodeVar(t Topics, name, topic string, payload []byte) (value json.RawMessage, ok bool, err error)
	// GlobalReady is the manager's global ready signal (for fakes and tests).
	GlobalReady() []byte
}

// The wire names --everest-wire takes. WireAuto lets the module find out (see detect.go).
const (
	WireAuto   = "auto"
	WireV025   = "v0.25"
	WireV022   = "v0.22-v0.24"
	WireV019   = "v0.19-v0.21"
	WireV017   = "v0.17-v0.18"
	WireLatest = WireV025
)

// Wires returns every wire, newest first: the order in which they are documented and tried.
func Wires() []Wire { return []Wire{V025, V022, V019, V017} }

// WireNames returns the names WireByName accepts, for usage messages.
func WireNames() []string {
	out := []string{WireAuto}
	for _, w := range Wires() {
		out = append(out, w.Name())
	}
	return out
}

// wireAliases lets a user name a generation by any framework version in it (or by "current").
var wireAliases = map[string]string{
	"current": WireV025, "v0.25.0": WireV025,
	"v0.24": WireV022, "v0.23": WireV022, "v0.22": WireV022,
	"v0.21": WireV019, "v0.20": WireV019, "v0.19": WireV019,
	"v0.18": WireV017, "v0.17": WireV017,
}

// WireByName returns the wire called name (a name of WireNames, or a framework version such as
// "v0.24"); nil, nil for "auto".
func WireByName(name string) (Wire, error) {
	n := strings.TrimSpace(strings.ToLower(name))
	if n == "" || n == WireAuto {
		return nil, nil
	}
	if a, ok := wireAliases[n]; ok {
		n = a
	}
	for _, w := range Wires() {
		if w.Name() == n {
			return w, nil
		}
	}
	names := WireNames()
	sort.Strings(names[1:])
	return nil, fmt.Errorf("unknown EVerest wire %q (want one of %s)", name, strings.Join(names, ", "))
}

// V025 is the wire of framework v0.25 (everest-core 2025.12 on): every message in the
// {"msg_type","data"} envelope, one topic per command with the result on
// <cmd topic>/response/<caller>, one topic per variable.
var V025 Wire = wire25{}

// wire25 implements Wire with the envelope codec of wire.go.
type wire25 struct{}

// Name implements Wire for the v0.25 envelope.
func (wire25) Name() string { return WireV025 }

// Layout implements Wire: v0.25 keeps the modules/<id>/impl/<impl> layout.
func (wire25) Layout(t Topics) Topics { t.Flat = false; return t }

// Releases implements Wire for the v0.25 envelope.
func (wire25) Releases() string { return "everest-core 2025.12.0 and later" }

// CmdFilter implements Wire for the v0.25 envelope.
func (wire25) CmdFilter(t Topics) string { return t.CmdSubscription() }

// CarriesErrors implements Wire for the v0.25 envelope.
func (wire25) CarriesErrors() bool { return true }

// ModuleReady implements Wire for the v0.25 envelope.
func (wire25) ModuleReady() []byte { b, _ := EncodeModuleReady(); return b }

// GlobalReady implements Wire for the v0.25 envelope.
func (wire25) GlobalReady() []byte { b, _ := EncodeGlobalReady(); return b }

// IsGlobalReady implements Wire for the v0.25 envelope.
func (wire25) IsGlobalReady(payload []byte) bool {
	ok, err := DecodeBool(payload, MsgGlobalReady)
	return err == nil && ok
}

// Metadata: evsesec has never published it on this wire, and nothing reads it.
func (wire25) Metadata(Topics, string) (string, []byte) { return "", nil }

// DecodeCall implements Wire for the v0.25 envelope.
func (wire25) DecodeCall(t Topics, topic string, payload []byte) (string, Cmd, bool, error) {
	name, ok := t.CmdName(topic)
	if !ok {
		return "", Cmd{}, false, nil
	}
	c, err := DecodeCmd(payload)
	return name, c, true, err
}

// Result implements Wire for the v0.25 envelope.
func (wire25) Result(t Topics, name string, c Cmd, retval json.RawMessage, e *CmdError) (string, []byte, error) {
	var msg []byte
	var err error
	if e != nil {
		msg, err = EncodeError(c.ID, t.ModuleID, e)
	} else {
		msg, err = EncodeResult(c.ID, t.ModuleID, retval)
	}
	return t.CmdResponse(name, c.Origin), msg, err
}

// Var implements Wire for the v0.25 envelope.
func (wire25) Var(t Topics, name string, value any) (string, []byte, error) {
	msg, err := EncodeVar(value)
	return t.Var(name), msg, err
}

// ConfigRequest implements Wire for the v0.25 envelope.
func (wire25) ConfigRequest(t Topics) (string, []byte, string) {
	msg, _ := EncodeGetConfig(t.ModuleID)
	return t.ConfigRequest(), msg, t.ConfigResponse()
}

// ParseConfig implements Wire for the v0.25 envelope.
func (wire25) ParseConfig(_ Topics, payload []byte) (ModuleConfig, error) {
	return ParseConfigResponse(payload)
}

// Call implements Wire for the v0.25 envelope.
func (wire25) Call(t Topics, name, id, origin string, args json.RawMessage) (string, []byte, error) {
	msg, err := EncodeCmd(id, origin, args)
	return t.Cmd(name), msg, err
}

// ResultFilter implements Wire for the v0.25 envelope.
func (wire25) ResultFilter(t Topics, origin string) string { return t.CmdResponseSubscription(origin) }

// DecodeResult implements Wire for the v0.25 envelope.
func (wire25) DecodeResult(_ Topics, _ string, payload []byte) (CmdResultValues, bool, error) {
	r, err := DecodeResult(payload)
	return r, err == nil, err
}

// VarFilter implements Wire for the v0.25 envelope.
func (wire25) VarFilter(t Topics, name string) string { return t.Var(name) }

// DecodeVar implements Wire for the v0.25 envelope.
func (wire25) DecodeVar(t Topics, name, topic string, payload []byte) (json.RawMessage, bool, error) {
	if topic != t.Var(name) {
		return nil, false, nil
	}
	v, err := DecodeVar(payload)
	return v, err == nil, err
}
