// Package everesttest holds the test doubles of an EVerest installation for the tests of the
// everest package and of cmd/evsesec: brokers (the embedded one on a free loopback port, Debian's
// mosquitto), a fake manager, fake calling modules, and the interface's JSON schemas.
package everesttest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The URLs the vendored YAML files are registered under. EVerest writes type references as
// `$ref: /evse_security#/X`; resolved against the interface's URL that is typesURL + "#/X", a
// JSON pointer into the types file's `types:` map.
const (
	interfaceURL = "https://everest.invalid/interfaces/evse_security"
	typesURL     = "https://everest.invalid/evse_security"
)

// DataDir is the directory of the vendored EVerest YAML files (everest/testdata/everest).
func DataDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", "everest")
}

// readYAML reads a YAML file as JSON-compatible values.
func readYAML(name string) (any, error) {
	data, err := os.ReadFile(filepath.Join(DataDir(), name))
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return jsonschema.UnmarshalJSON(strings.NewReader(string(j)))
}

// Schemas validates values against the evse_security interface and its types.
type Schemas struct {
	results map[string]*jsonschema.Schema // command → result schema; nil: no result
	args    map[string]map[string]*jsonschema.Schema
	vars    map[string]*jsonschema.Schema
}

// LoadSchemas compiles the result, argument and variable schemas of every command. Object types
// are made strict (no properties beyond the declared ones), so a misspelt field fails.
func LoadSchemas(t testing.TB) *Schemas {
	t.Helper()
	s, err := loadSchemas()
	if err != nil {
		t.Fatalf("load EVerest schemas: %v", err)
	}
	return s
}

// extensionKey marks enum values evsesec adds to a type of the interface (see the types file's
// LeafCertificateType). Unknown to JSON Schema, it is ignored unless LoadExtendedSchemas folds it
// into the enum.
const extensionKey = "x-evsesec-extension-enum"

// LoadExtendedSchemas is LoadSchemas with evsesec's extension enum values accepted: what a
// caller that knows the extensions (V2G20) may send and receive. Everything else is as strict as
// the upstream interface.
func LoadExtendedSchemas(t testing.TB) *Schemas {
	t.Helper()
	s, err := loadSchemasWith(true)
	if err != nil {
		t.Fatalf("load EVerest schemas with evsesec extensions: %v", err)
	}
	return s
}

func loadSchemas() (*Schemas, error) { return loadSchemasWith(false) }

// foldExtensions appends each type's extension values to its enum.
func foldExtensions(types map[string]any) {
	for _, v := range types {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		ext, ok := m[extensionKey].([]any)
		if !ok {
			continue
		}
		if enum, ok := m["enum"].([]any); ok {
			m["enum"] = append(append([]any{}, enum...), ext...)
		}
	}
}

func loadSchemasWith(extensions bool) (*Schemas, error) {
	iface, err := readYAML("interfaces-evse_security.yaml")
	if err != nil {
		return nil, err
	}
	typesDoc, err := readYAML("types-evse_security.yaml")
	if err != nil {
		return nil, err
	}
	types, ok := typesDoc.(map[string]any)["types"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("types file has no types map")
	}
	for _, v := range types {
		strict(v)
	}
	if extensions {
		foldExtensions(types)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(typesURL, types); err != nil {
		return nil, err
	}
	if err := c.AddResource(interfaceURL, iface); err != nil {
		return nil, err
	}
	s := &Schemas{results: map[string]*jsonschema.Schema{}, args: map[string]map[string]*jsonschema.Schema{}, vars: map[string]*jsonschema.Schema{}}
	cmds := iface.(map[string]any)["cmds"].(map[string]any)
	for name, v := range cmds {
		cmd := v.(map[string]any)
		s.results[name] = nil
		if _, ok := cmd["result"]; ok {
			sch, err := c.Compile(interfaceURL + "#/cmds/" + name + "/result")
			if err != nil {
				return nil, fmt.Errorf("result of %s: %w", name, err)
			}
			s.results[name] = sch
		}
		s.args[name] = map[string]*jsonschema.Schema{}
		args, _ := cmd["arguments"].(map[string]any)
		for a := range args {
			sch, err := c.Compile(interfaceURL + "#/cmds/" + name + "/arguments/" + a)
			if err != nil {
				return nil, fmt.Errorf("argument %s of %s: %w", a, name, err)
			}
			s.args[name][a] = sch
		}
	}
	vars, _ := iface.(map[string]any)["vars"].(map[string]any)
	for name := range vars {
		sch, err := c.Compile(interfaceURL + "#/vars/" + name)
		if err != nil {
			return nil, fmt.Errorf("var %s: %w", name, err)
		}
		s.vars[name] = sch
	}
	return s, nil
}

// strict adds additionalProperties: false to every object schema with properties that does not
// say otherwise, recursively.
func strict(v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if _, has := m["properties"]; has {
		if _, set := m["additionalProperties"]; !set {
			m["additionalProperties"] = false
		}
	}
	for _, c := range m {
		switch x := c.(type) {
		case map[string]any:
			strict(x)
		case []any:
			for _, e := range x {
				strict(e)
			}
		}
	}
}

// Commands returns the interface's command names, sorted.
func (s *Schemas) Commands() []string {
	out := make([]string, 0, len(s.results))
	for n := range s.results {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ValidateResult checks a command's result. A command without a result must return JSON null.
func (s *Schemas) ValidateResult(cmd string, result json.RawMessage) error {
	sch, ok := s.results[cmd]
	if !ok {
		return fmt.Errorf("%s is not a command of the interface", cmd)
	}
	if sch == nil {
		if strings.TrimSpace(string(result)) != "null" {
			return fmt.Errorf("%s has no result, got %s", cmd, result)
		}
		return nil
	}
	return validate(sch, result)
}

// ValidateArgs checks a command's argument object: every argument of the interface present and
// valid, no other.
func (s *Schemas) ValidateArgs(cmd string, args json.RawMessage) error {
	schemas, ok := s.args[cmd]
	if !ok {
		return fmt.Errorf("%s is not a command of the interface", cmd)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(args, &m); err != nil {
		return err
	}
	for name, sch := range schemas {
		v, ok := m[name]
		if !ok {
			return fmt.Errorf("%s: argument %s missing", cmd, name)
		}
		if err := validate(sch, v); err != nil {
			return fmt.Errorf("%s: argument %s: %w", cmd, name, err)
		}
	}
	for name := range m {
		if _, ok := schemas[name]; !ok {
			return fmt.Errorf("%s: unknown argument %s", cmd, name)
		}
	}
	return nil
}

// ValidateVar checks a variable's value.
func (s *Schemas) ValidateVar(name string, value json.RawMessage) error {
	sch, ok := s.vars[name]
	if !ok {
		return fmt.Errorf("%s is not a variable of the interface", name)
	}
	return validate(sch, value)
}

func validate(sch *jsonschema.Schema, raw json.RawMessage) error {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(raw)))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return sch.Validate(v)
}

// ManifestDefaults returns the config keys of the EvseSecurity manifest with their default
// values, as the manager sends them when a config sets none.
func ManifestDefaults(t testing.TB) map[string]any {
	t.Helper()
	m, err := readYAML("EvseSecurity-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for k, v := range m.(map[string]any)["config"].(map[string]any) {
		out[k] = v.(map[string]any)["default"]
	}
	return out
}
