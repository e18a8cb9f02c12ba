package api

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

// StoreConfig maps the module config parameters an EVerest manager sends (name → JSON value)
// onto the store's Config: the manifest's defaults (as store.DefaultConfig has them) under
// <etcDir>/certs, each parameter decoded onto the Config field of the same YAML key. Relative
// paths stay relative: the store resolves them under the certs root, as the C++ module prefixes
// them with <etc_dir>/certs. A certs_root parameter, if a custom manifest has one, is taken
// relative to etcDir.
//
// A parameter the store does not know, or one with a value of the wrong type, is skipped and
// reported in warnings: module mode must not die on a config it can partly use.
func StoreConfig(params map[string]json.RawMessage, etcDir string) (cfg store.Config, warnings []string) {
	cfg = store.DefaultConfig(filepath.Join(etcDir, "certs"))
	known := yamlKeys(reflect.TypeOf(cfg))
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !known[k] {
			warnings = append(warnings, fmt.Sprintf("config parameter %q is not an evsesec setting; ignored", k))
			continue
		}
		node, err := jsonToNode(params[k])
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
		cfg.CertsRoot = filepath.Join(etcDir, cfg.CertsRoot)
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
