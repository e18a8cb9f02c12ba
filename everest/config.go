package everest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/evsesec/evsesec/store"
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
	var r getConfigResponse
	if err := json.Unmarshal(e.Data, &r); err != nil {
		return ModuleConfig{}, fmt.Errorf("config response: %v", err)
	}
	if r.Status != "" && r.Status != "Ok" {
		return ModuleConfig{}, fmt.Errorf("config response status %q: %s", r.Status, r.StatusInfo)
	}
	mc := r.Response.Data.ModuleConfig
	out := ModuleConfig{ModuleID: mc.ModuleID, ModuleName: mc.ModuleName, Params: map[string]json.RawMessage{}}
	raw, ok := mc.Params[ModuleImplID]
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

// StoreConfig maps the parameters onto the store's Config: the manifest's defaults (as
// store.DefaultConfig has them) under CertsRoot, each parameter decoded onto the Config field of
// the same YAML key. Relative paths stay relative: the store resolves them under the certs root,
// as the C++ module prefixes them with <etc_dir>/certs. A certs_root parameter, if a custom
// manifest has one, is taken relative to EtcDir.
//
// A parameter the store does not know, or one with a value of the wrong type, is skipped and
// reported in warnings: module mode must not die on a config it can partly use.
func (m ModuleConfig) StoreConfig() (cfg store.Config, warnings []string) {
	cfg = store.DefaultConfig(m.CertsRoot())
	known := yamlKeys(reflect.TypeOf(cfg))
	names := make([]string, 0, len(m.Params))
	for k := range m.Params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known[k] {
			warnings = append(warnings, fmt.Sprintf("config parameter %q is not an evsesec setting; ignored", k))
			continue
		}
		node, err := jsonToNode(m.Params[k])
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("config parameter %q: %v; default kept", k, err))
			continue
		}
		doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, node}}
		next := cfg
		if err := doc.Decode(&next); err != nil {
			warnings = append(warnings, fmt.Sprintf("config parameter %q: %v; default kept", k, oneLineErr(err)))
			continue
		}
		cfg = next
	}
	if !filepath.IsAbs(cfg.CertsRoot) {
		cfg.CertsRoot = filepath.Join(m.EtcDir, cfg.CertsRoot)
	}
	return cfg, warnings
}

// yamlKeys returns the YAML keys of a struct type's fields.
func yamlKeys(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

// jsonToNode turns a JSON value into the YAML node that means the same, keeping numbers as
// written (so 52428800 decodes into an int64 and 3600 into a Duration of seconds).
func jsonToNode(raw json.RawMessage) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("value is not JSON: %v", err)
	}
	return valueNode(v)
}

func valueNode(v any) (*yaml.Node, error) {
	switch x := v.(type) {
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(x.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: x.String()}, nil
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range x {
			c, err := valueNode(e)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		return n, nil
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			c, err := valueNode(x[k])
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, c)
		}
		return n, nil
	}
	return nil, errors.New("unsupported JSON value")
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
