package certs

import (
	"bytes"
	"github.com/evsesec/evsesec/internal/testtool"
	"os/exec"
	"testing"
)

// requireTool returns the path of an external program a test uses as an oracle. When it is
// missing the test is skipped on a developer machine, but fails in CI (CI=true), where a skipped
// differential test would silently hide a regression.
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Require(t, name)
}

// runOpenSSL runs the openssl CLI in dir and returns its standard output, failing the test if
// the command fails.
func runOpenSSL(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	out, err := tryOpenSSL(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %q: %v", args, err)
	}
	return out
}

// tryOpenSSL runs the openssl CLI in dir; a failure is returned with openssl's stderr in it.
func tryOpenSSL(t testing.TB, dir string, args ...string) ([]byte, error) {
	t.Helper()
	bin := requireTool(t, "openssl")
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &toolError{err: err, stderr: stderr.String()}
	}
	return out, nil
}

type toolError struct {
	err    error
	stderr string
}

func (e *toolError) Error() string { return e.err.Error() + ": " + e.stderr }
