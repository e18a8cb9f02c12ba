// Package scripts_test checks the shell scripts of the repository by running them against a
// fake `go` command, so that CI's own steps are tested like the code they test.
package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeGo answers the two `go test` calls of fuzz-ci.sh. The listing names one target, FuzzA of
// package example/p. A fuzzing run plays the next line of $FAKE_RUNS (one word a run: pass,
// race, found, failed, broken), counting runs in $FAKE_COUNT.
const fakeGo = `#!/usr/bin/env bash
set -eu
case " $* " in
  *" -list "*) echo FuzzA; echo "ok  	example/p	0.01s"; exit 0 ;;
esac
n=$(( $(cat "$FAKE_COUNT" 2>/dev/null || echo 0) + 1 ))
echo "$n" >"$FAKE_COUNT"
run="$(sed -n "${n}p" <<<"$FAKE_RUNS")"
echo "fuzz: elapsed: 0s, gathering baseline coverage: 0/3 completed"
case "$run" in
  pass) echo PASS; echo "ok  	example/p	10.0s"; exit 0 ;;
  race)
    printf -- '--- FAIL: FuzzA (10.97s)\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\texample/p\t10.9s\n'
    exit 1 ;;
  found)
    mkdir -p p/testdata/fuzz/FuzzA
    echo 'go test fuzz v1' >p/testdata/fuzz/FuzzA/0123abcd
    printf -- '--- FAIL: FuzzA (0.20s)\n    --- FAIL: FuzzA (0.00s)\n        a_test.go:9: boom\n\n    Failing input written to testdata/fuzz/FuzzA/0123abcd\n    To re-run:\n    go test -run=FuzzA/0123abcd\nFAIL\nexit status 1\nFAIL\texample/p\t0.3s\n'
    exit 1 ;;
  failed)
    printf -- '--- FAIL: FuzzA (10.97s)\n    a_test.go:9: seed 2 rejected\n    context deadline exceeded\nFAIL\nexit status 1\nFAIL\texample/p\t10.9s\n'
    exit 1 ;;
  broken) echo "p/a_test.go:3:1: syntax error"; echo "FAIL	example/p [build failed]"; exit 1 ;;
  *) echo "fake go: no run $n planned" >&2; exit 3 ;;
esac
`

// runFuzzCI runs a copy of fuzz-ci.sh in a scratch tree whose `go` plays runs, and returns its
// output, its exit code, and how many fuzzing runs it made.
func runFuzzCI(t *testing.T, runs ...string) (string, int, int) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatalf("bash is needed to run scripts/fuzz-ci.sh: %v", err)
	}
	root := t.TempDir()
	script, err := os.ReadFile("fuzz-ci.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "fakebin")
	for dir, files := range map[string]map[string]string{
		filepath.Join(root, "scripts"): {"fuzz-ci.sh": string(script)},
		bin:                            {"go": fakeGo},
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := filepath.Join(root, "count")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "fuzz-ci.sh"))
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"FAKE_RUNS="+strings.Join(runs, "\n"),
		"FAKE_COUNT="+count,
		"FUZZTIME=1s")
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = exit.ExitCode()
	}
	n := 0
	if b, err := os.ReadFile(count); err == nil {
		if n, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			t.Fatalf("run count: %v", err)
		}
	}
	return string(out), code, n
}

// TestFuzzCIDeadlineRace checks that only Go's -fuzztime shutdown race is forgiven: a run that
// failed with nothing but "context deadline exceeded" and wrote no input is run once more, and
// every other failure fails CI at once.
func TestFuzzCIDeadlineRace(t *testing.T) {
	tests := []struct {
		name     string
		runs     []string
		wantCode int
		wantRuns int
		wantOut  string
	}{
		{"passes", []string{"pass"}, 0, 1, "(0 failed, 0 cut short"},
		{"race then pass", []string{"race", "pass"}, 0, 2, "(again: the last run hit the -fuzztime race)"},
		{"race twice", []string{"race", "race"}, 0, 2, "both runs ended in the -fuzztime race"},
		{"failing input written", []string{"found"}, 1, 1, "./p/testdata/fuzz/FuzzA/0123abcd"},
		{"race after a real failure", []string{"race", "found"}, 1, 2, "./p/testdata/fuzz/FuzzA/0123abcd"},
		{"deadline with a failing check", []string{"failed"}, 1, 1, "example/p FuzzA"},
		{"build failure", []string{"broken"}, 1, 1, "example/p FuzzA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, runs := runFuzzCI(t, tt.runs...)
			if code != tt.wantCode || runs != tt.wantRuns || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d after %d runs, want exit %d after %d runs with %q in:\n%s",
					code, runs, tt.wantCode, tt.wantRuns, tt.wantOut, out)
			}
		})
	}
}
