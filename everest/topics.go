package everest

import "strings"

// Defaults of the framework and of the EvseSecurity module.
const (
	// DefaultPrefix is the framework's everest prefix.
	DefaultPrefix = "everest/"
	// DefaultModuleID is the module id EVerest configs give EvseSecurity.
	DefaultModuleID = "evse_security"
	// DefaultImpl is the implementation id of the evse_security interface in the manifest.
	DefaultImpl = "main"
	// StoreUpdateVar is the interface's only variable.
	StoreUpdateVar = "certificate_store_update"
)

// NormalizePrefix returns the everest prefix as the framework uses it: the default when empty,
// and always ending in "/".
func NormalizePrefix(p string) string {
	if p == "" {
		return DefaultPrefix
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// Topics is the topic layout of one module implementation (protocol note §1.4).
type Topics struct {
	// Prefix is the everest prefix, ending in "/" (see NormalizePrefix).
	Prefix string
	// ModuleID is the module's id in the EVerest config.
	ModuleID string
	// Impl is the implementation id ("main").
	Impl string
	// Flat is the layout of framework v0.17 and v0.18, whose topics have no "modules/" and no
	// "impl/" level: P <id>/ready, P <id>/<impl>/cmd (lib/config.cpp mqtt_module_prefix and
	// mqtt_prefix at those tags). A Wire sets it (Wire.Layout); the examples in the comments
	// here are of the layout of v0.19 on.
	Flat bool
}

// NewTopics returns the topics of module id's implementation impl under prefix; empty values
// take the defaults.
func NewTopics(prefix, moduleID, impl string) Topics {
	if moduleID == "" {
		moduleID = DefaultModuleID
	}
	if impl == "" {
		impl = DefaultImpl
	}
	return Topics{Prefix: NormalizePrefix(prefix), ModuleID: moduleID, Impl: impl}
}

// ConfigRequest is where modules ask the manager for their config: P config/request.
func (t Topics) ConfigRequest() string { return t.Prefix + "config/request" }

// ConfigResponse is where the manager answers: P modules/<id>/response.
func (t Topics) ConfigResponse() string { return t.module() + "/response" }

// ModuleReady is where the module reports ready: P modules/<id>/ready.
func (t Topics) ModuleReady() string { return t.module() + "/ready" }

// GlobalReady is where the manager reports that every module is ready: P ready.
func (t Topics) GlobalReady() string { return t.Prefix + "ready" }

// Settings is the manager's retained RuntimeSettings: P settings.
func (t Topics) Settings() string { return t.Prefix + "settings" }

// ModuleNames is the manager's retained list of module names: P module_names. A fresh copy
// means the manager (re)started.
func (t Topics) ModuleNames() string { return t.Prefix + "module_names" }

// Cmd is the topic of one command: P modules/<id>/impl/<impl>/cmd/<cmd>.
func (t Topics) Cmd(name string) string { return t.impl() + "/cmd/" + name }

// CmdSubscription matches every command of the implementation and nothing else:
// P modules/<id>/impl/<impl>/cmd/+ ("#" would also match the response topics).
func (t Topics) CmdSubscription() string { return t.impl() + "/cmd/+" }

// CmdResponse is where the result of a call by origin goes: <cmd topic>/response/<origin>.
func (t Topics) CmdResponse(name, origin string) string { return t.Cmd(name) + "/response/" + origin }

// CmdResponseSubscription matches the results of every command called by origin.
func (t Topics) CmdResponseSubscription(origin string) string {
	return t.impl() + "/cmd/+/response/" + origin
}

// Var is the topic of a variable: P modules/<id>/impl/<impl>/var/<var>.
func (t Topics) Var(name string) string { return t.impl() + "/var/" + name }

// CmdName returns the command of a command topic; ok is false for any other topic.
func (t Topics) CmdName(topic string) (name string, ok bool) {
	name, ok = strings.CutPrefix(topic, t.impl()+"/cmd/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

func (t Topics) module() string {
	if t.Flat {
		return t.Prefix + t.ModuleID
	}
	return t.Prefix + "modules/" + t.ModuleID
}

func (t Topics) impl() string {
	if t.Flat {
		return t.module() + "/" + t.Impl
	}
	return t.module() + "/impl/" + t.Impl
}

// The topics of the older framework generations (v0.17 to v0.24) and the retained topics the
// detection reads; see wires.go for which generation uses which.

// CmdShared is the one command topic per implementation of framework v0.17 to v0.24, carrying
// both the calls and the results: P modules/<id>/impl/<impl>/cmd.
func (t Topics) CmdShared() string { return t.impl() + "/cmd" }

// VarShared is the one variable topic per implementation of framework v0.17 to v0.24:
// P modules/<id>/impl/<impl>/var.
func (t Topics) VarShared() string { return t.impl() + "/var" }

// GetConfig is where a module of framework v0.19 to v0.21 asks for its config:
// P modules/<id>/get_config.
func (t Topics) GetConfig() string { return t.module() + "/get_config" }

// ModuleConfigTopic is where the manager of framework v0.19 to v0.21 answers:
// P modules/<id>/config.
func (t Topics) ModuleConfigTopic() string { return t.module() + "/config" }

// Metadata is where a module says what it provides (informational): P modules/<id>/metadata.
func (t Topics) Metadata() string { return t.module() + "/metadata" }

// ModuleProvides is a retained topic only the managers of framework v0.19 and v0.20 publish.
func (t Topics) ModuleProvides() string { return t.Prefix + "module_provides" }

// InterfaceDefinition is the manager's retained definition of interface name (framework v0.19
// on): P interface_definitions/<name>.
func (t Topics) InterfaceDefinition(name string) string {
	return t.Prefix + "interface_definitions/" + name
}

// Interfaces is the manager's retained list of interface names, the first retained topic every
// manager from v0.19 on publishes: P interfaces.
func (t Topics) Interfaces() string { return t.Prefix + "interfaces" }
