package everest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseModuleConfigMessage reads the answer on P modules/<id>/config of a framework v0.19 to
// v0.21 manager (src/manager.cpp, get_serialized_module_config). Two shapes:
//
//   - v0.21: {"mappings":…,"module_config":{"configuration_parameters":{"!module":[{name,value,
//     characteristics}],…},"module_id","module_name",…}}, as v0.22 on sends inside its response;
//   - v0.19, v0.20: {"mappings":…,"module_config":{"<id>":<the config file's entry, with the
//     manifest's defaults filled in under "config_maps"."!module": name → value on v0.19, name →
//     {"type","value"} on v0.20>},…}.
func parseModuleConfigMessage(payload []byte, moduleID string) (ModuleConfig, error) {
	var msg struct {
		ModuleConfig map[string]json.RawMessage `json:"module_config"`
	}
	if err := json.Unmarshal(payload, &msg); err != nil {
		return ModuleConfig{}, fmt.Errorf("module config: %v", err)
	}
	if msg.ModuleConfig == nil {
		return ModuleConfig{}, errors.New("module config: no module_config")
	}
	if _, ok := msg.ModuleConfig["configuration_parameters"]; ok {
		var mc struct {
			ModuleID   string                     `json:"module_id"`
			ModuleName string                     `json:"module_name"`
			Params     map[string]json.RawMessage `json:"configuration_parameters"`
		}
		whole, _ := json.Marshal(msg.ModuleConfig)
		if err := json.Unmarshal(whole, &mc); err != nil {
			return ModuleConfig{}, fmt.Errorf("module config: %v", err)
		}
		return paramsOf(mc.ModuleID, mc.ModuleName, mc.Params)
	}
	entry, ok := msg.ModuleConfig[moduleID]
	if !ok {
		return ModuleConfig{}, fmt.Errorf("module config: no entry for module %q", moduleID)
	}
	var e struct {
		Module       string                     `json:"module"`
		ConfigMaps   map[string]json.RawMessage `json:"config_maps"`
		ConfigModule json.RawMessage            `json:"config_module"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return ModuleConfig{}, fmt.Errorf("module config of %q: %v", moduleID, err)
	}
	raw, ok := e.ConfigMaps[ModuleImplID]
	if !ok {
		// Without the parsed map, the config file's own values (no manifest defaults).
		raw = e.ConfigModule
	}
	var typed map[string]json.RawMessage
	if err := json.Unmarshal(raw, &typed); err == nil {
		for k, v := range typed {
			typed[k] = untyped(v)
		}
		raw, _ = json.Marshal(typed)
	}
	return paramsOf(moduleID, e.Module, map[string]json.RawMessage{ModuleImplID: raw})
}

// untyped returns the value of a v0.20 parsed config entry, {"type":<schema type>,"value":v}
// (lib/config.cpp parse_config_map); v0.19 has the bare value, which is returned as it is.
func untyped(v json.RawMessage) json.RawMessage {
	var entry map[string]json.RawMessage
	if json.Unmarshal(v, &entry) != nil || len(entry) != 2 || entry["value"] == nil {
		return v
	}
	var typ string
	if json.Unmarshal(entry["type"], &typ) != nil {
		return v
	}
	return entry["value"]
}

// FileConfig is what a module of framework v0.17 or v0.18 learns from the EVerest config file
// the manager names with --conf (the framework's RuntimeSettings and Config): where the broker
// is, the everest prefix, and the module's own config.
type FileConfig struct {
	// Path is the config file read.
	Path string
	// Prefix is the installation prefix: --prefix, else settings.prefix, else /usr.
	Prefix string
	// BrokerHost, BrokerPort and BrokerSocket are the settings' mqtt_broker_* (defaults
	// localhost:1883, no socket), overridden by MQTT_SERVER_ADDRESS and MQTT_SERVER_PORT.
	BrokerHost   string
	BrokerPort   int
	BrokerSocket string
	// EverestPrefix is settings.mqtt_everest_prefix (default "everest/"), ending in "/".
	EverestPrefix string
	// Module is the module's config: its parameters are the config file's config_module on top
	// of the manifest's defaults, EtcDir follows the prefix, Interface is the installation's
	// evse_security interface definition when it can be read.
	Module ModuleConfig
}

// BrokerURL is the broker the config file names: its Unix socket if set, else host:port.
func (f FileConfig) BrokerURL() string {
	if f.BrokerSocket != "" {
		return UnixURL(f.BrokerSocket)
	}
	return TCPURL(f.BrokerHost, strconv.Itoa(f.BrokerPort))
}

// ReadConfigFile reads the EVerest config file for module moduleID, as a framework v0.17 or
// v0.18 module does at start (lib/runtime.cpp RuntimeSettings, lib/config.cpp): the YAML's
// settings and its active_modules.<moduleID> entry, then the module's manifest
// (<modules_dir>/<ModuleName>/manifest.yaml) for the defaults of the keys the entry leaves out.
// A missing manifest is not an error: the store's own defaults are the manifest's. prefix is
// the manager's --prefix ("" when it passed none).
func ReadConfigFile(path, prefix, moduleID string) (FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return FileConfig{}, fmt.Errorf("EVerest config file: %w", err)
	}
	var doc struct {
		Settings      map[string]any `yaml:"settings"`
		ActiveModules map[string]struct {
			Module       string         `yaml:"module"`
			ConfigModule map[string]any `yaml:"config_module"`
		} `yaml:"active_modules"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return FileConfig{}, fmt.Errorf("EVerest config file %s: %v", path, oneLine(err.Error()))
	}
	str := func(key, def string) string {
		if s, ok := doc.Settings[key].(string); ok {
			return s
		}
		return def
	}
	f := FileConfig{Path: path, Prefix: prefix, BrokerHost: str("mqtt_broker_host", "localhost"), BrokerPort: 1883,
		BrokerSocket: str("mqtt_broker_socket_path", ""), EverestPrefix: NormalizePrefix(str("mqtt_everest_prefix", "everest"))}
	if f.Prefix == "" {
		f.Prefix = str("prefix", "/usr")
	}
	switch p := doc.Settings["mqtt_broker_port"].(type) {
	case int:
		f.BrokerPort = p
	case string: // a quoted port
		if n, err := strconv.Atoi(p); err == nil {
			f.BrokerPort = n
		}
	}
	if v := os.Getenv("MQTT_SERVER_ADDRESS"); v != "" {
		f.BrokerHost = v
	}
	if v, err := strconv.Atoi(os.Getenv("MQTT_SERVER_PORT")); err == nil {
		f.BrokerPort = v
	}
	entry, ok := doc.ActiveModules[moduleID]
	if !ok {
		return FileConfig{}, fmt.Errorf("EVerest config file %s has no active module %q", path, moduleID)
	}
	dataDir := filepath.Join(f.Prefix, "share", "everest")
	modulesDir := str("modules_dir", filepath.Join(f.Prefix, "libexec", "everest", "modules"))
	interfacesDir := str("interfaces_dir", filepath.Join(dataDir, "interfaces"))
	if !filepath.IsAbs(modulesDir) {
		modulesDir = filepath.Join(f.Prefix, modulesDir)
	}
	if !filepath.IsAbs(interfacesDir) {
		interfacesDir = filepath.Join(f.Prefix, interfacesDir)
	}
	params := map[string]json.RawMessage{}
	for k, v := range manifestDefaults(filepath.Join(modulesDir, entry.Module, "manifest.yaml")) {
		params[k] = v
	}
	for k, v := range entry.ConfigModule {
		raw, err := json.Marshal(v)
		if err != nil {
			return FileConfig{}, fmt.Errorf("EVerest config file %s: config_module.%s: %v", path, k, err)
		}
		params[k] = raw
	}
	f.Module = ModuleConfig{ModuleID: moduleID, ModuleName: entry.Module, Params: params, EtcDir: EtcDirOf(f.Prefix), Wire: WireV017}
	if def, err := yamlFileAsJSON(filepath.Join(interfacesDir, InterfaceName+".yaml")); err == nil {
		f.Module.Interface = def
	}
	return f, nil
}

// manifestDefaults returns the default of every config key of a module manifest; nil when the
// manifest cannot be read.
func manifestDefaults(path string) map[string]json.RawMessage {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var m struct {
		Config map[string]struct {
			Default any `yaml:"default"`
		} `yaml:"config"`
	}
	if yaml.Unmarshal(data, &m) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for k, c := range m.Config {
		if c.Default == nil {
			continue
		}
		if raw, err := json.Marshal(c.Default); err == nil {
			out[k] = raw
		}
	}
	return out
}

// yamlFileAsJSON reads a YAML file (an interface definition) as JSON.
func yamlFileAsJSON(path string) (json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
