package api_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/evsesec/evsesec/api"
)

// interfaceArgs reads the arguments of every command of the vendored interface YAML: command →
// argument → JSON type.
func interfaceArgs(t *testing.T) map[string]map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "everest", "testdata", "everest", "interfaces-evse_security.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cmds map[string]struct {
			Arguments map[string]struct {
				Type string `yaml:"type"`
			} `yaml:"arguments"`
		} `yaml:"cmds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cmds) == 0 {
		t.Fatal("no commands in the interface YAML")
	}
	out := map[string]map[string]string{}
	for name, c := range doc.Cmds {
		out[name] = map[string]string{}
		for a, spec := range c.Arguments {
			out[name][a] = spec.Type
		}
	}
	return out
}

// The dispatcher's table declares exactly the interface's arguments, each with its JSON type and
// required (EVerest's framework refuses a call without any of them), so the required-argument
// check of the dispatcher covers every argument of every command.
func TestParamsMatchTheInterface(t *testing.T) {
	yamlArgs := interfaceArgs(t)
	known := map[string]bool{}
	for _, c := range api.Commands() {
		known[c] = true
	}
	for cmd, args := range yamlArgs {
		params, ok := api.Params(cmd)
		if !ok || !known[cmd] {
			t.Errorf("%s: not in the dispatcher", cmd)
			continue
		}
		got := map[string]api.Param{}
		for _, p := range params {
			if _, dup := got[p.Name]; dup {
				t.Errorf("%s: %s declared twice", cmd, p.Name)
			}
			got[p.Name] = p
		}
		for name, typ := range args {
			p, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: argument %s of the interface is not declared", cmd, name)
			case p.Type != typ:
				t.Errorf("%s: argument %s declared as %s, the interface says %s", cmd, name, p.Type, typ)
			case !p.Required:
				t.Errorf("%s: argument %s is not required", cmd, name)
			}
		}
		for name := range got {
			if _, ok := args[name]; !ok {
				t.Errorf("%s: declares %s, which the interface does not have", cmd, name)
			}
		}
	}
	// evsesec's own commands: every argument required, types among the interface's.
	var own []string
	for _, c := range api.Commands() {
		if _, ok := yamlArgs[c]; ok {
			continue
		}
		own = append(own, c)
		params, _ := api.Params(c)
		for _, p := range params {
			if !p.Required {
				t.Errorf("%s: argument %s is not required", c, p.Name)
			}
			switch p.Type {
			case "string", "boolean", "object", "array":
			default:
				t.Errorf("%s: argument %s has type %q", c, p.Name, p.Type)
			}
		}
	}
	sort.Strings(own)
	t.Logf("evsesec's own commands: %v", own)
}
