package everest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// ModuleImplID is the pseudo implementation id under which the manager sends module-level config
// parameters (FW/include/utils/config_service.hpp).
const ModuleImplID = "!module"

// ModuleConfig is what the module knows after start-up: its config parameters as the manager
// sent them, and where the EVerest installation keeps its files.
type ModuleConfig struct {
	// ModuleID and ModuleName are the manager's (e.g. "evse_security", "EvseSecurity").
	ModuleID   string
	ModuleName string
	// Params are the module-level config parameters, name → JSON value. The manager fills in
	// the manifest's defaults for keys the config leaves out.
	Params map[string]json.RawMessage
	// EtcDir is EVerest's etc directory (see EtcDirOf); relative paths resolve under
	// EtcDir/certs.
	EtcDir string
	// Wire is the name of the wire the manager speaks (see Wires).
	Wire string
	// Interface is the manager's definition of the evse_security interface (its cmds and
	// vars, as JSON), when the manager published one or the config file's installation has
	// one; nil otherwise. It tells which release's interface the callers speak.
	Interface json.RawMessage
}

// EtcDirOf returns EVerest's etc directory for an installation prefix, as the framework's
// init_settings computes it: /etc/everest for prefix /usr, <parent>/etc/everest when the
// prefix's last element is "usr" (/opt/x/usr → /opt/x/etc/everest), else <prefix>/etc/everest.
func EtcDirOf(prefix string) string {
	if prefix == "" {
		prefix = "/usr"
	}
	p := filepath.Clean(prefix)
	if filepath.Base(p) == "usr" {
		return filepath.Join(filepath.Dir(p), "etc", "everest")
	}
	return filepath.Join(p, "etc", "everest")
}

// CertsRoot is the directory relative certificate paths resolve under: <etc_dir>/certs.
func (m ModuleConfig) CertsRoot() string { return filepath.Join(m.EtcDir, "certs") }

// getConfigResponse is the data of a GetConfigResponse to a module's request (protocol note
// §1.5); only what the module needs is read.
type getConfigResponse struct {
	Status     string `json:"status"`
	StatusInfo string `json:"status_info"`
	Response   struct {
		Type string `json:"type"`
		Data struct {
			ModuleConfig struct {
				ModuleName string                     `json:"module_name"`
				ModuleID   string                     `json:"module_id"`
				Params     map[string]json.RawMessage `json:"configuration_parameters"`
			} `json:"module_config"`
		} `json:"data"`
	} `json:"response"`
}

// configParam is one entry of a configuration_parameters list.
type configParam struct {
	Name  string          `json:"name"`
	Value json.RawMessage `json:"value"`
}

// ParseConfigResponse reads the manager's GetConfigResponse and returns the module-level
// parameters. The "!module" entry is a list of {name, value, characteristics}; a plain
// name → value object is accepted too.
func ParseConfigResponse(payload []byte) (ModuleConfig, error) {
	e, err := Decode(payload)
	if err != nil {
		return ModuleConfig{}, err
	}
	if e.MsgType != MsgGetConfigResponse {
		return ModuleConfig{}, fmt.Errorf("msg_type %q, want %q", e.MsgType, MsgGetConfigResponse)
	}
	return parseGetConfigData(e.Data)
}

// parseGetConfigData reads the data of a GetConfigResponse: the whole un-enveloped answer of a
// framework v0.22 to v0.24 manager, the envelope's data on v0.25.
func parseGetConfigData(data []byte) (ModuleConfig, error) {
	var r getConfigResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return ModuleConfig{}, fmt.Errorf("config response: %v", err)
	}
	if r.Status != "" && r.Status != "Ok" {
		return ModuleConfig{}, fmt.Errorf("config response status %q: %s", r.Status, r.StatusInfo)
	}
	mc := r.Response.Data.ModuleConfig
	return paramsOf(mc.ModuleID, mc.ModuleName, mc.Params)
}

// paramsOf reads the module-level parameters out of a configuration_parameters object.
func paramsOf(moduleID, moduleName string, params map[string]json.RawMessage) (ModuleConfig, error) {
	out := ModuleConfig{ModuleID: moduleID, ModuleName: moduleName, Params: map[string]json.RawMessage{}}
	raw, ok := params[ModuleImplID]
	if !ok || len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return out, nil
	}
	var list []configParam
	if err := json.Unmarshal(raw, &list); err == nil {
		for _, p := range list {
			if p.Name != "" {
				out.Params[p.Name] = p.Value
			}
		}
		return out, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return ModuleConfig{}, fmt.Errorf("config response: %q parameters are neither a list nor an object", ModuleImplID)
	}
	for k, v := range obj {
		out.Params[k] = v
	}
	return out, nil
}

// etcDirOfSettings finds etc_dir in the manager's retained P settings message; "" if it has none.
// The settings are read leniently: enveloped or not, directly or under "data".
func etcDirOfSettings(payload []byte) string {
	var v any = nil
	if err := json.Unmarshal(payload, &v); err != nil {
		return ""
	}
	for range 4 {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		if s, ok := m["etc_dir"].(string); ok {
			return s
		}
		v = m["data"]
	}
	return ""
}
