package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// The evse_security interface changed between everest-core releases. The history, from
// interfaces/evse_security.yaml and types/evse_security.yaml at every release tag since 2024.9.0
// (releases not named changed nothing, 2025.8.0 only whitespace):
//
//	2024.9.0   the base: 13 commands, verify_certificate takes one certificate_type, no variable
//	2024.10.0  + get_all_valid_certificates_info (GetCertificateFullInfoResult),
//	           + CertificateInfo.certificate_root
//	2024.11.0  + get_verify_location
//	2025.4.0   verify_certificate takes a list, certificate_types, instead of certificate_type
//	2025.6.0   + the variable certificate_store_update (CertificateStoreUpdate)
//
// A Versioned handler serves one release's callers: it accepts what they send and answers in
// that release's types.

// InterfaceVersion is one release's evse_security interface, as what matters to its callers.
type InterfaceVersion struct {
	// Since is the first everest-core release with this interface.
	Since string
	// AllValidInfo: get_all_valid_certificates_info exists and CertificateInfo has
	// certificate_root.
	AllValidInfo bool
	// VerifyLocation: get_verify_location exists.
	VerifyLocation bool
	// VerifyTypesList: verify_certificate takes certificate_types (a list); before, it took one
	// certificate_type.
	VerifyTypesList bool
	// StoreUpdateVar: the certificate_store_update variable exists.
	StoreUpdateVar bool
}

// InterfaceVersions is the interface's history, oldest first.
var InterfaceVersions = []InterfaceVersion{
	{Since: "2024.9.0"},
	{Since: "2024.10.0", AllValidInfo: true},
	{Since: "2024.11.0", AllValidInfo: true, VerifyLocation: true},
	{Since: "2025.4.0", AllValidInfo: true, VerifyLocation: true, VerifyTypesList: true},
	{Since: "2025.6.0", AllValidInfo: true, VerifyLocation: true, VerifyTypesList: true, StoreUpdateVar: true},
}

// LatestInterface is the current interface.
func LatestInterface() InterfaceVersion { return InterfaceVersions[len(InterfaceVersions)-1] }

// InterfaceOfRelease returns the interface of everest-core release (e.g. "2025.1.0"); releases
// before 2024.9.0 get the oldest known.
func InterfaceOfRelease(release string) InterfaceVersion {
	v := InterfaceVersions[0]
	for _, iv := range InterfaceVersions {
		if ReleaseBefore(release, iv.Since) {
			break
		}
		v = iv
	}
	return v
}

// ReleaseBefore reports whether everest-core release tag a (YYYY.M.P) comes before b, comparing
// the numbers, not the strings (2024.9.0 comes before 2024.10.0).
func ReleaseBefore(a, b string) bool {
	var x, y [3]int
	fmt.Sscanf(a, "%d.%d.%d", &x[0], &x[1], &x[2])
	fmt.Sscanf(b, "%d.%d.%d", &y[0], &y[1], &y[2])
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

// InterfaceOfDefinition reads the interface version off an interface definition (the
// evse_security YAML as JSON, as the manager publishes it under interface_definitions/): which
// commands, arguments and variables it has.
func InterfaceOfDefinition(def json.RawMessage) (InterfaceVersion, error) {
	var d struct {
		Cmds map[string]struct {
			Arguments map[string]json.RawMessage `json:"arguments"`
		} `json:"cmds"`
		Vars map[string]json.RawMessage `json:"vars"`
	}
	if err := json.Unmarshal(def, &d); err != nil {
		return InterfaceVersion{}, fmt.Errorf("interface definition: %v", err)
	}
	verify, ok := d.Cmds["verify_certificate"]
	if !ok {
		return InterfaceVersion{}, fmt.Errorf("interface definition: not evse_security (no verify_certificate)")
	}
	_, all := d.Cmds["get_all_valid_certificates_info"]
	_, loc := d.Cmds["get_verify_location"]
	_, list := verify.Arguments["certificate_types"]
	_, v := d.Vars["certificate_store_update"]
	iv := InterfaceVersion{AllValidInfo: all, VerifyLocation: loc, VerifyTypesList: list, StoreUpdateVar: v}
	for _, known := range InterfaceVersions {
		if known.AllValidInfo == iv.AllValidInfo && known.VerifyLocation == iv.VerifyLocation &&
			known.VerifyTypesList == iv.VerifyTypesList && known.StoreUpdateVar == iv.StoreUpdateVar {
			iv.Since = known.Since
		}
	}
	return iv, nil
}

// CallHandler runs one command (the Dispatcher's Call).
type CallHandler interface {
	Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error)
}

// Versioned serves the callers of one interface version with a handler of the current one.
type Versioned struct {
	next CallHandler
	v    InterfaceVersion
}

// Serve returns a handler that runs next for the callers of interface version v.
func (v InterfaceVersion) Serve(next CallHandler) *Versioned { return &Versioned{next: next, v: v} }

// Version is the interface version served.
func (h *Versioned) Version() InterfaceVersion { return h.v }

// Call runs command name: the arguments of an older release are rewritten into the current
// form (verify_certificate's single certificate_type becomes the list; any release's callers may
// send either), and the result is cut down to the release's types (no certificate_root before
// 2024.10.0).
func (h *Versioned) Call(ctx context.Context, name string, args json.RawMessage) (json.RawMessage, error) {
	if name == "verify_certificate" {
		args = singleToList(args, "certificate_type", "certificate_types")
	}
	res, err := h.next.Call(ctx, name, args)
	if err != nil || h.v.AllValidInfo {
		return res, err
	}
	switch name {
	case "get_leaf_certificate_info":
		return withoutInfoField(res, "certificate_root"), nil
	}
	return res, nil
}

// singleToList rewrites {"<one>": x} into {"<many>": [x]} when many is absent.
func singleToList(args json.RawMessage, one, many string) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil {
		return args
	}
	v, hasOne := m[one]
	if _, hasMany := m[many]; !hasOne || hasMany || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
		return args
	}
	m[many] = json.RawMessage("[" + string(v) + "]")
	delete(m, one)
	out, err := json.Marshal(m)
	if err != nil {
		return args
	}
	return out
}

// withoutInfoField drops field from a GetCertificateInfoResult's info.
func withoutInfoField(res json.RawMessage, field string) json.RawMessage {
	var r map[string]json.RawMessage
	if json.Unmarshal(res, &r) != nil || r["info"] == nil {
		return res
	}
	var info map[string]json.RawMessage
	if json.Unmarshal(r["info"], &info) != nil {
		return res
	}
	if _, ok := info[field]; !ok {
		return res
	}
	delete(info, field)
	raw, err := json.Marshal(info)
	if err != nil {
		return res
	}
	r["info"] = raw
	out, err := json.Marshal(r)
	if err != nil {
		return res
	}
	return out
}

// failureResults are the answers to a failed call for callers that cannot receive an error
// result (framework v0.17 to v0.21): a value of the command's result type that means failure,
// what the C++ module answers when the library call fails.
var failureResults = map[string]string{
	"install_ca_certificate":               `"WriteError"`,
	"update_leaf_certificate":              `"WriteError"`,
	"delete_certificate":                   `"Failed"`,
	"verify_certificate":                   `"Unknown"`,
	"get_installed_certificates":           `{"status":"NotFound","certificate_hash_data_chain":[]}`,
	"get_v2g_ocsp_request_data":            `{"ocsp_request_data_list":[]}`,
	"get_mo_ocsp_request_data":             `{"ocsp_request_data_list":[]}`,
	"is_ca_certificate_installed":          `false`,
	"generate_certificate_signing_request": `{"status":"GenerationError"}`,
	"get_leaf_certificate_info":            `{"status":"Rejected"}`,
	"get_all_valid_certificates_info":      `{"status":"Rejected","info":[]}`,
	"get_verify_file":                      `""`,
	"get_verify_location":                  `""`,
	"get_leaf_expiry_days_count":           `0`,
	"verify_file_signature":                `false`,
}

// FailureResult is the result that answers a failed call of command name where the caller
// cannot receive an error: JSON null for a command without a result or one not in the
// interface.
func FailureResult(name string) json.RawMessage {
	if s, ok := failureResults[name]; ok {
		return json.RawMessage(s)
	}
	return json.RawMessage("null")
}
