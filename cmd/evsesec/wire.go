package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/store"
)

// wireEnv forces the wire in module mode, where the manager's command line has no room for a
// flag of ours: a way out should the detection ever guess wrong in the field.
const wireEnv = "EVSESEC_EVEREST_WIRE"

// configFileArgv returns the config file a framework v0.17 or v0.18 manager names: those pass
// `--prefix P --conf FILE --module ID` and nothing about MQTT (src/manager.cpp exec_cpp_module;
// the module's Boost parser takes --conf as --config). From v0.19 on the manager passes
// --log_config and the --mqtt_* flags instead, and no config file.
func configFileArgv(args []string) (string, bool) {
	path, found := "", false
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(args[i], "--"), "=")
		switch {
		case name == "log_config" || strings.HasPrefix(name, "mqtt_"):
			return "", false
		case name == "conf" || name == "config":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			path, found = value, value != ""
		}
	}
	return path, found
}

// chooseModuleWire settles what the command line and the environment already decide about the
// wire: EVSESEC_EVEREST_WIRE forces one; the v0.17/v0.18 command line means reading the config
// file (broker and everest prefix included). Otherwise the runner finds out over MQTT.
func chooseModuleWire(opts *everest.Options, m managerArgs, args []string, log *slog.Logger) {
	if v := os.Getenv(wireEnv); v != "" {
		if w, err := everest.WireByName(v); err != nil {
			log.Error("ignoring "+wireEnv, "err", err)
		} else if w != nil {
			opts.Wire, opts.WireReason = w.Name(), wireEnv+" is set"
			log.Info("EVerest wire chosen", "wire", w.Name(), "releases", w.Releases(), "why", opts.WireReason)
		}
	}
	path, ok := configFileArgv(args)
	if !ok || (opts.Wire != everest.WireAuto && opts.Wire != everest.WireV017) {
		return
	}
	fc, err := everest.ReadConfigFile(path, m.prefix, m.module)
	if err != nil {
		// Without the file the module cannot know its config; the MQTT detection still
		// finds a manager that answers config requests.
		log.Error("the manager's command line names a config file (framework v0.17, v0.18), but it cannot be read; trying the MQTT wires", "err", err)
		return
	}
	opts.Wire = everest.WireV017
	if opts.WireReason == "" {
		opts.WireReason = "the manager passed --conf and no MQTT flags (framework v0.17, v0.18: the module reads the config file)"
	}
	opts.Broker = everest.Broker{URL: fc.BrokerURL()}
	opts.Prefix = fc.EverestPrefix
	opts.InstallPrefix = fc.Prefix
	opts.FileConfig = &fc.Module
	log.Info("EVerest wire chosen", "wire", everest.V017.Name(), "releases", everest.V017.Releases(),
		"why", opts.WireReason, "config_file", path, "broker", opts.Broker.String())
}

// releaseOfWire is the oldest release each wire serves: the interface assumed when the manager
// published no definition of evse_security. The oldest is the safe guess: it publishes no
// variable its callers do not know and omits fields their types do not have.
var releaseOfWire = map[string]string{
	everest.WireV025: api.LatestInterface().Since,
	everest.WireV022: "2025.6.0",
	everest.WireV019: "2024.11.0",
	everest.WireV017: "2024.9.0",
}

// interfaceOf decides which release's evse_security interface the callers speak: the
// definition the manager published (or the installation holds, on v0.17/v0.18), else the oldest
// release of the wire.
func interfaceOf(mc everest.ModuleConfig, log *slog.Logger) api.InterfaceVersion {
	if len(mc.Interface) > 0 {
		iv, err := api.InterfaceOfDefinition(mc.Interface)
		if err == nil {
			log.Info("evse_security interface", "as_of_release", iv.Since, "from", "the manager's interface definition",
				"certificate_store_update", iv.StoreUpdateVar)
			return iv
		}
		log.Warn("unusable evse_security interface definition; going by the wire", "err", err)
	}
	iv := api.LatestInterface()
	if rel, ok := releaseOfWire[mc.Wire]; ok {
		iv = api.InterfaceOfRelease(rel)
	}
	log.Info("evse_security interface", "as_of_release", iv.Since, "from", "the wire "+mc.Wire,
		"certificate_store_update", iv.StoreUpdateVar)
	return iv
}

// storeUpdates publishes the store's events as certificate_store_update where the interface
// has the variable (api.StoreUpdateFor is the one mapping of events onto it). It has the
// signature of store.Options.OnEvent.
func storeUpdates(r *everest.Runner, iv api.InterfaceVersion, log *slog.Logger) func(store.Event) {
	return func(e store.Event) {
		u, ok := api.StoreUpdateFor(e)
		if !ok || !iv.StoreUpdateVar {
			return
		}
		if err := r.PublishVar(everest.StoreUpdateVar, u); err != nil {
			log.Warn("could not publish certificate_store_update", "kind", e.Kind, "err", err)
		}
	}
}
