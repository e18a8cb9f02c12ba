package everest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The wires of framework v0.17 to v0.24 (everest-core 2024.9 to 2025.10), taken from the
// framework's lib/everest.cpp, lib/module_config.cpp and src/manager.cpp at each tag. They share
// everything but the config exchange and the error result:
//
//   - no envelope: every payload is the bare JSON;
//   - one command topic per implementation, P modules/<id>/impl/<impl>/cmd (v0.17, v0.18:
//     P <id>/<impl>/cmd, see Topics.Flat), carrying both the
//     call {"data":{"args","id","origin"},"name","type":"call"} and the result
//     {"data":{"id","origin","retval"|"error"},"name","type":"result"}; a caller matches its
//     result by data.id;
//   - one variable topic per implementation, .../var, {"data":<value>,"name":<var>};
//   - ready and global ready are the bare JSON true;
//   - everything at QoS 2, nothing retained.
//
// The C++ framework serialises with nlohmann::json, whose objects keep their keys sorted; these
// codecs write the same bytes (see canonicalJSON).
var (
	// V022 is the wire of framework v0.22 to v0.24 (everest-core 2025.6 to 2025.10): the config
	// comes through P config/request → P modules/<id>/response.
	V022 Wire = legacyWire{name: WireV022, releases: "everest-core 2025.6.0 to 2025.10.0", config: configRequest, errors: errorsBoth}
	// V019 is the wire of framework v0.19 to v0.21 (everest-core 2024.11 to 2025.5): the config
	// comes through P modules/<id>/get_config → P modules/<id>/config, and a caller cannot
	// receive an error result.
	V019 Wire = legacyWire{name: WireV019, releases: "everest-core 2024.11.0 to 2025.5.0", config: configGetConfig}
	// V017 is the wire of framework v0.17 and v0.18 (everest-core 2024.9 and 2024.10): the
	// module reads its config from the EVerest config file (--conf on its command line, see
	// ReadConfigFile); a caller cannot receive an error result.
	// Its topics have no modules/ and impl/ levels (Topics.Flat).
	V017 Wire = legacyWire{name: WireV017, releases: "everest-core 2024.9.0 to 2024.10.0", config: configFile, flat: true}
)

// configStyle is how a generation's module gets its config.
type configStyle int

const (
	configFile      configStyle = iota // the module reads the config file itself (v0.17, v0.18)
	configGetConfig                    // P modules/<id>/get_config → P modules/<id>/config (v0.19–v0.21)
	configRequest                      // P config/request → P modules/<id>/response, un-enveloped (v0.22–v0.24)
)

// errorStyle is whether and how a generation's callers read an error result.
type errorStyle int

const (
	// errorsNone: the caller reads only data.retval (v0.17–v0.21), so a failure must be answered
	// with a result of the command's type.
	errorsNone errorStyle = iota
	// errorsBoth: v0.22 reads error.{event,msg}, v0.23 and v0.24 read
	// error.{__everest__error_type,__everest__error_msg}. Their managers are indistinguishable
	// on the wire, so the error carries both key pairs; each caller ignores the other's.
	errorsBoth
)

// legacyWire implements Wire for framework v0.17 to v0.24.
type legacyWire struct {
	name, releases string
	config         configStyle
	errors         errorStyle
	flat           bool // the topic layout of v0.17, v0.18 (Topics.Flat)
}

// Name implements Wire for the un-enveloped wires.
func (w legacyWire) Name() string { return w.name }

// Releases implements Wire for the un-enveloped wires.
func (w legacyWire) Releases() string { return w.releases }

// Layout implements Wire for the un-enveloped wires.
func (w legacyWire) Layout(t Topics) Topics { t.Flat = w.flat; return t }

// CmdFilter implements Wire for the un-enveloped wires.
func (w legacyWire) CmdFilter(t Topics) string { return t.CmdShared() }

// CarriesErrors implements Wire for the un-enveloped wires.
func (w legacyWire) CarriesErrors() bool { return w.errors != errorsNone }

// ModuleReady implements Wire for the un-enveloped wires.
func (legacyWire) ModuleReady() []byte { return []byte("true") }

// GlobalReady implements Wire for the un-enveloped wires.
func (legacyWire) GlobalReady() []byte { return []byte("true") }

// IsGlobalReady implements Wire for the un-enveloped wires.
func (legacyWire) IsGlobalReady(payload []byte) bool {
	var b bool
	return json.Unmarshal(payload, &b) == nil && b
}

// legacyMsg is a message on the shared command topic, keys in nlohmann's (sorted) order.
type legacyMsg struct {
	Data json.RawMessage `json:"data"`
	Name string          `json:"name"`
	Type string          `json:"type"`
}

// legacyCall is the data of a call.
type legacyCall struct {
	Args   json.RawMessage `json:"args"`
	ID     string          `json:"id"`
	Origin string          `json:"origin"`
}

// legacyResult is the data of a result: retval, or error when the call failed.
type legacyResult struct {
	Error  json.RawMessage `json:"error,omitempty"`
	ID     string          `json:"id"`
	Origin string          `json:"origin"`
	Retval json.RawMessage `json:"retval,omitempty"`
}

// legacyError is the error of a failed call as both v0.22 and v0.23/v0.24 callers read it.
type legacyError struct {
	Msg   string `json:"__everest__error_msg"`
	Type  string `json:"__everest__error_type"`
	Event string `json:"event"`
	Msg22 string `json:"msg"`
}

// eventNames are the v0.22 names of the error types (lib/conversions.cpp, CMD_EVENT_*).
var eventNames = map[ErrorType]string{
	MessageParsingError:   "MessageParsingFailed",
	SchemaValidationError: "SchemaValidationFailed",
	HandlerException:      "HandlerException",
	CmdTimeout:            "Timeout",
	Shutdown:              "Shutdown",
	NotReady:              "NotReady",
}

// errorTypeOfEvent maps a v0.22 event name back.
func errorTypeOfEvent(event string) ErrorType {
	for t, e := range eventNames {
		if e == event {
			return t
		}
	}
	return ErrorType(event)
}

// DecodeCall implements Wire for the un-enveloped wires.
func (w legacyWire) DecodeCall(t Topics, topic string, payload []byte) (string, Cmd, bool, error) {
	if topic != t.CmdShared() {
		return "", Cmd{}, false, nil
	}
	payload = trimPadding(payload) // our own results come back here, padded or not
	var m legacyMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		var loose struct {
			Name any `json:"name"`
		}
		_ = json.Unmarshal(payload, &loose)
		name, _ := loose.Name.(string)
		return name, Cmd{}, true, fmt.Errorf("cmd message: %v", err)
	}
	if m.Type != "call" {
		return "", Cmd{}, false, nil // our own results, and anything else on the shared topic
	}
	var c legacyCall
	if err := json.Unmarshal(m.Data, &c); err != nil {
		return m.Name, whomToAnswer(m.Data), true, fmt.Errorf("cmd data: %v", err)
	}
	cmd := Cmd{ID: c.ID, Args: c.Args, Origin: c.Origin}
	switch {
	case m.Name == "":
		return "", cmd, true, errors.New("cmd message: no name")
	case c.Origin == "":
		return m.Name, cmd, true, errors.New("cmd data: no origin")
	}
	return m.Name, cmd, true, nil
}

// Result implements Wire for the un-enveloped wires.
func (w legacyWire) Result(t Topics, name string, c Cmd, retval json.RawMessage, e *CmdError) (string, []byte, error) {
	r := legacyResult{ID: c.ID, Origin: t.ModuleID}
	switch {
	case e != nil && w.errors == errorsBoth:
		raw, err := canonicalJSON(legacyError{Msg: e.Message, Type: string(e.Type), Event: eventNames[e.Type], Msg22: e.Message})
		if err != nil {
			return "", nil, err
		}
		r.Error = raw
	case e != nil:
		// Never reached through the runner (CarriesErrors is false); a caller reading retval
		// gets null rather than a message it cannot parse.
		r.Retval = json.RawMessage("null")
	case len(retval) == 0:
		r.Retval = json.RawMessage("null")
	default:
		raw, err := canonicalJSON(retval)
		if err != nil {
			return "", nil, err
		}
		r.Retval = raw
	}
	data, err := canonicalJSON(r)
	if err != nil {
		return "", nil, err
	}
	msg, err := canonicalJSON(legacyMsg{Data: data, Name: name, Type: "result"})
	return t.CmdShared(), msg, err
}

// Var implements Wire for the un-enveloped wires.
func (legacyWire) Var(t Topics, name string, value any) (string, []byte, error) {
	raw, err := canonicalJSON(value)
	if err != nil {
		return "", nil, err
	}
	msg, err := canonicalJSON(struct {
		Data json.RawMessage `json:"data"`
		Name string          `json:"name"`
	}{raw, name})
	return t.VarShared(), msg, err
}

// Metadata is published by every C++ module of these generations before its ready
// (Everest::publish_metadata); nothing depends on it, but a wire log then reads the same.
func (legacyWire) Metadata(t Topics, moduleName string) (string, []byte) {
	msg, _ := canonicalJSON(map[string]any{
		"module":   moduleName,
		"provides": map[string]any{t.Impl: map[string]any{"interface": InterfaceName}},
	})
	return t.Metadata(), msg
}

// ConfigRequest implements Wire for the un-enveloped wires.
func (w legacyWire) ConfigRequest(t Topics) (string, []byte, string) {
	switch w.config {
	case configRequest:
		msg, _ := canonicalJSON(map[string]any{"origin": t.ModuleID, "request": map[string]any{"type": "Module"}, "type": "Get"})
		return t.ConfigRequest(), msg, t.ConfigResponse()
	case configGetConfig:
		return t.GetConfig(), []byte(`{"type":"full"}`), t.ModuleConfigTopic()
	}
	return "", nil, ""
}

// ParseConfig implements Wire for the un-enveloped wires.
func (w legacyWire) ParseConfig(t Topics, payload []byte) (ModuleConfig, error) {
	switch w.config {
	case configRequest:
		return parseGetConfigData(payload)
	case configGetConfig:
		return parseModuleConfigMessage(payload, t.ModuleID)
	}
	return ModuleConfig{}, errors.New("this wire has no config over MQTT: the module reads the config file")
}

// Call implements Wire for the un-enveloped wires.
func (legacyWire) Call(t Topics, name, id, origin string, args json.RawMessage) (string, []byte, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	a, err := canonicalJSON(args)
	if err != nil {
		return "", nil, err
	}
	data, err := canonicalJSON(legacyCall{Args: a, ID: id, Origin: origin})
	if err != nil {
		return "", nil, err
	}
	msg, err := canonicalJSON(legacyMsg{Data: data, Name: name, Type: "call"})
	return t.CmdShared(), msg, err
}

// ResultFilter implements Wire for the un-enveloped wires.
func (legacyWire) ResultFilter(t Topics, _ string) string { return t.CmdShared() }

// DecodeResult implements Wire for the un-enveloped wires.
func (legacyWire) DecodeResult(t Topics, topic string, payload []byte) (CmdResultValues, bool, error) {
	if topic != t.CmdShared() {
		return CmdResultValues{}, false, nil
	}
	var m legacyMsg
	if err := json.Unmarshal(payload, &m); err != nil {
		return CmdResultValues{}, false, err
	}
	if m.Type != "result" {
		return CmdResultValues{}, false, nil
	}
	var r legacyResult
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return CmdResultValues{}, false, fmt.Errorf("cmd result: %v", err)
	}
	out := CmdResultValues{ID: r.ID, Origin: r.Origin, Retval: r.Retval}
	if len(r.Error) > 0 {
		var e struct {
			Type  string `json:"__everest__error_type"`
			Msg   string `json:"__everest__error_msg"`
			Event string `json:"event"`
			Msg22 string `json:"msg"`
		}
		if err := json.Unmarshal(r.Error, &e); err != nil {
			return CmdResultValues{}, false, fmt.Errorf("cmd result error: %v", err)
		}
		ce := &CmdError{Type: ErrorType(e.Type), Message: e.Msg}
		if e.Type == "" {
			ce = &CmdError{Type: errorTypeOfEvent(e.Event), Message: e.Msg22}
		}
		out.Error, out.Retval = ce, nil
	}
	return out, true, nil
}

// VarFilter implements Wire for the un-enveloped wires.
func (legacyWire) VarFilter(t Topics, _ string) string { return t.VarShared() }

// DecodeVar implements Wire for the un-enveloped wires.
func (legacyWire) DecodeVar(t Topics, name, topic string, payload []byte) (json.RawMessage, bool, error) {
	if topic != t.VarShared() {
		return nil, false, nil
	}
	var v struct {
		Data json.RawMessage `json:"data"`
		Name string          `json:"name"`
	}
	if err := json.Unmarshal(payload, &v); err != nil {
		return nil, false, fmt.Errorf("var message: %v", err)
	}
	if v.Name != name {
		return nil, false, nil
	}
	return v.Data, true, nil
}

// InterfaceName is the interface EvseSecurity's main implementation provides.
const InterfaceName = "evse_security"

// canonicalJSON writes v the way nlohmann::json dumps it: object keys sorted, no spaces, no
// HTML escaping, numbers as written.
func canonicalJSON(v any) ([]byte, error) {
	raw, ok := v.(json.RawMessage)
	if !ok {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(tree); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
