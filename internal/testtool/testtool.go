// Package testtool holds helpers shared by the tests of several packages.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Require makes sure an external tool the test needs (openssl, mosquitto, swtpm, ...) is on the
// PATH and returns its path. Under CI (CI=true) a missing tool fails the test: CI installs every
// tool, so a skip there would hide a broken set-up. Elsewhere the test is skipped with a message
// saying what to install.
func Require(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required but not installed (CI=true): %v", name, err)
	}
	t.Skipf("%s not installed; skipping (install it to run this test)", name)
	return ""
}
