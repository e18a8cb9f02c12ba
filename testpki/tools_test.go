package testpki

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool makes sure an external program the test needs is on PATH. On a developer machine a
// missing tool skips the test; in CI (CI=true) it fails it, because CI installs every tool and a
// silent skip there would hide a broken setup.
func requireTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but not on PATH: %v", name, err)
		}
		t.Skipf("skipping: %s not on PATH (install it to run this test)", name)
	}
}

// openssl runs the OpenSSL CLI and returns its combined output and error.
func openssl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	requireTool(t, "openssl")
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// mustOpenSSL runs the OpenSSL CLI and fails the test when it fails.
func mustOpenSSL(t testing.TB, args ...string) string {
	t.Helper()
	out, err := openssl(t, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeTemp writes data to a new file in t's temporary directory and returns its path.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
