package everest

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MsgType is the msg_type of the framework's message envelope.
type MsgType string

// The message types of framework v0.25 (FW/lib/types.cpp). A message without msg_type is
// ExternalMQTT; an unknown msg_type makes the C++ side throw.
const (
	MsgVar               MsgType = "Var"
	MsgCmd               MsgType = "Cmd"
	MsgCmdResult         MsgType = "CmdResult"
	MsgExternalMQTT      MsgType = "ExternalMQTT"
	MsgRaiseError        MsgType = "RaiseError"
	MsgClearError        MsgType = "ClearError"
	MsgGetConfig         MsgType = "GetConfig"
	MsgGetConfigResponse MsgType = "GetConfigResponse"
	MsgHeartbeat         MsgType = "Heartbeat"
	MsgModuleReady       MsgType = "ModuleReady"
	MsgGlobalReady       MsgType = "GlobalReady"
)

// Envelope is the wrapper of every framework message under the everest prefix:
// {"msg_type": ..., "data": ...}.
type Envelope struct {
	MsgType MsgType         `json:"msg_type"`
	Data    json.RawMessage `json:"data"`
}

// ErrorType is a command error's __everest__error_type.
type ErrorType string

// The error types of a command result (FW/lib/conversions.cpp). A C++ caller turns each into an
// exception.
const (
	MessageParsingError   ErrorType = "MessageParsingError"
	SchemaValidationError ErrorType = "SchemaValidationError"
	HandlerException      ErrorType = "HandlerException"
	CmdTimeout            ErrorType = "CmdTimeout"
	Shutdown              ErrorType = "Shutdown"
	NotReady              ErrorType = "NotReady"
)

// CmdError is the error of a failed command, in the framework's field names. A Handler may
// return a *CmdError to choose the type the caller sees; any other error is classified by
// ErrorTypeOf.
type CmdError struct {
	Type    ErrorType `json:"__everest__error_type"`
	Message string    `json:"__everest__error_msg"`
}

// Error returns "Type: Message".
func (e *CmdError) Error() string { return fmt.Sprintf("%s: %s", e.Type, e.Message) }

// Cmd is the data of a Cmd message: a call of one command by module Origin.
type Cmd struct {
	ID     string          `json:"id"`
	Args   json.RawMessage `json:"args"`
	Origin string          `json:"origin"`
}

// CmdResult is the data of a CmdResult message.
type CmdResult struct {
	// Type is always "result".
	Type string          `json:"type"`
	Data CmdResultValues `json:"data"`
}

// CmdResultValues is the inner data of a CmdResult: the echoed id, and either the result
// (Retval, JSON null for commands without a result) or Error.
type CmdResultValues struct {
	ID string `json:"id"`
	// Retval is absent on the wire when Error is set.
	Retval json.RawMessage `json:"retval,omitempty"`
	Origin string          `json:"origin"`
	Error  *CmdError       `json:"error,omitempty"`
}

// VarData is the data of a Var message. The value is wrapped once more: {"data": value}.
type VarData struct {
	Data json.RawMessage `json:"data"`
}

// GetConfig is the data of the module's config request.
type GetConfig struct {
	Type    string           `json:"type"` // "Get"
	Origin  string           `json:"origin"`
	Request GetConfigRequest `json:"request"`
}

// GetConfigRequest says what config the module wants; a module asks for its own ("Module").
type GetConfigRequest struct {
	Type string `json:"type"`
}

// encode wraps data into an envelope of type t.
func encode(t MsgType, data any) ([]byte, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	// The bytes json.Marshal(Envelope{t, raw}) gives, written around raw instead of marshalled
	// again: marshalling re-scans and compacts a RawMessage, and raw, json.Marshal's own output,
	// is already compact and escaped. A result is scanned once here instead of twice.
	mt, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(raw)+len(mt)+22)
	out = append(out, `{"msg_type":`...)
	out = append(out, mt...)
	out = append(out, `,"data":`...)
	out = append(out, raw...)
	return append(out, '}'), nil
}

// EncodeCmd returns the Cmd message calling a command.
func EncodeCmd(id, origin string, args json.RawMessage) ([]byte, error) {
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	return encode(MsgCmd, Cmd{ID: id, Args: args, Origin: origin})
}

// EncodeResult returns the CmdResult message of a successful call. A nil retval is sent as JSON
// null, as the framework does for commands without a result.
func EncodeResult(id, origin string, retval json.RawMessage) ([]byte, error) {
	if len(retval) == 0 {
		retval = json.RawMessage("null")
	}
	if json.Valid(retval) && compactEscaped(retval) {
		return resultAround(id, origin, retval), nil
	}
	return encode(MsgCmdResult, CmdResult{Type: "result", Data: CmdResultValues{ID: id, Retval: retval, Origin: origin}})
}

// resultAround writes the bytes encode(MsgCmdResult, CmdResult{...}) gives around retval, which
// must be valid JSON that json.Marshal leaves as it is (compactEscaped). Marshalling compacts a
// RawMessage byte by byte, three times the work of validating it: for a result of a few KiB (a
// certificate chain) that was the largest single cost of answering a call.
func resultAround(id, origin string, retval json.RawMessage) []byte {
	// json.Marshal of a string cannot fail; it escapes as the struct encoding does.
	qid, _ := json.Marshal(id)
	qorigin, _ := json.Marshal(origin)
	const head, mid, tail = `{"msg_type":"CmdResult","data":{"type":"result","data":{"id":`, `,"retval":`, `,"origin":`
	out := make([]byte, 0, len(head)+len(qid)+len(mid)+len(retval)+len(tail)+len(qorigin)+3)
	out = append(out, head...)
	out = append(out, qid...)
	out = append(out, mid...)
	out = append(out, retval...)
	out = append(out, tail...)
	out = append(out, qorigin...)
	return append(out, "}}}"...)
}

// compactEscaped reports whether json.Marshal would copy the valid JSON b unchanged when it
// meets it as a RawMessage: no whitespace between tokens, and none of what it escapes inside
// strings (<, >, &, U+2028, U+2029). Raw tabs and line breaks can only lie between tokens of
// valid JSON, and a space is between tokens when it is outside a string. json.Marshal's own
// output, which is what the dispatcher returns, always passes.
func compactEscaped(b []byte) bool {
	inString := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			inString = !inString
		case '\\':
			i++ // the escaped byte; in valid JSON it is ASCII
		case ' ':
			if !inString {
				return false
			}
		case '\t', '\n', '\r', '<', '>', '&':
			return false
		case 0xE2:
			if i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xA8 || b[i+2] == 0xA9) {
				return false
			}
		}
	}
	return true
}

// EncodeError returns the CmdResult message of a failed call: no retval, and the error.
func EncodeError(id, origin string, e *CmdError) ([]byte, error) {
	return encode(MsgCmdResult, CmdResult{Type: "result", Data: CmdResultValues{ID: id, Origin: origin, Error: e}})
}

// EncodeVar returns the Var message publishing value.
func EncodeVar(value any) ([]byte, error) {
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	return encode(MsgVar, VarData{Data: raw})
}

// EncodeGetConfig returns the module's config request.
func EncodeGetConfig(moduleID string) ([]byte, error) {
	return encode(MsgGetConfig, GetConfig{Type: "Get", Origin: moduleID, Request: GetConfigRequest{Type: "Module"}})
}

// EncodeModuleReady returns the module's ready signal.
func EncodeModuleReady() ([]byte, error) { return encode(MsgModuleReady, true) }

// EncodeGlobalReady returns the manager's global ready signal (for fakes and tests).
func EncodeGlobalReady() ([]byte, error) { return encode(MsgGlobalReady, true) }

// ErrNotEnvelope is returned (wrapped) by Decode for a payload that is not a framework message.
var ErrNotEnvelope = errors.New("not a framework message")

// Decode reads the envelope of a framework message. A JSON object without msg_type is an
// ExternalMQTT message, as the framework treats it.
func Decode(payload []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(payload, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrNotEnvelope, err)
	}
	if e.MsgType == "" {
		e.MsgType = MsgExternalMQTT
	}
	return e, nil
}

// DecodeCmd reads a Cmd message. On a parse error it still returns what it could read of the
// id and origin, so the caller can be answered with a MessageParsingError.
func DecodeCmd(payload []byte) (Cmd, error) {
	e, err := Decode(payload)
	if err != nil {
		return Cmd{}, err
	}
	var c Cmd
	if e.MsgType != MsgCmd {
		// Still try to find whom to answer.
		_ = json.Unmarshal(e.Data, &c)
		return Cmd{ID: c.ID, Origin: c.Origin}, fmt.Errorf("msg_type %q, want %q", e.MsgType, MsgCmd)
	}
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return whomToAnswer(e.Data), fmt.Errorf("cmd data: %v", err)
	}
	if c.Origin == "" {
		return c, errors.New("cmd data: no origin")
	}
	return c, nil
}

// whomToAnswer reads what it can of the id and origin of call data that does not parse as a
// call (every wire's), so that the caller can still be answered with a MessageParsingError: each
// is kept when it is a string.
func whomToAnswer(data json.RawMessage) Cmd {
	var loose struct {
		ID     any `json:"id"`
		Origin any `json:"origin"`
	}
	_ = json.Unmarshal(data, &loose)
	id, _ := loose.ID.(string)
	origin, _ := loose.Origin.(string)
	return Cmd{ID: id, Origin: origin}
}

// DecodeResult reads a CmdResult message.
func DecodeResult(payload []byte) (CmdResultValues, error) {
	e, err := Decode(payload)
	if err != nil {
		return CmdResultValues{}, err
	}
	if e.MsgType != MsgCmdResult {
		return CmdResultValues{}, fmt.Errorf("msg_type %q, want %q", e.MsgType, MsgCmdResult)
	}
	var r CmdResult
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return CmdResultValues{}, fmt.Errorf("cmd result: %v", err)
	}
	return r.Data, nil
}

// DecodeVar reads a Var message and returns the value.
func DecodeVar(payload []byte) (json.RawMessage, error) {
	e, err := Decode(payload)
	if err != nil {
		return nil, err
	}
	if e.MsgType != MsgVar {
		return nil, fmt.Errorf("msg_type %q, want %q", e.MsgType, MsgVar)
	}
	var v VarData
	if err := json.Unmarshal(e.Data, &v); err != nil {
		return nil, fmt.Errorf("var data: %v", err)
	}
	return v.Data, nil
}

// DecodeBool reads a message of type t whose data is a boolean (ModuleReady, GlobalReady).
func DecodeBool(payload []byte, t MsgType) (bool, error) {
	e, err := Decode(payload)
	if err != nil {
		return false, err
	}
	if e.MsgType != t {
		return false, fmt.Errorf("msg_type %q, want %q", e.MsgType, t)
	}
	var b bool
	if err := json.Unmarshal(e.Data, &b); err != nil {
		return false, fmt.Errorf("%s data: %v", t, err)
	}
	return b, nil
}
