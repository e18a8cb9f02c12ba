package keys

import (
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
)

// requireTool stops a test that needs an external program which is not installed: under CI
// (CI=true) that is a failure, because CI installs every tool and a skip would hide lost
// coverage; on a developer machine it is a skip saying what to install. The rule itself lives in
// internal/testtool so that every package applies it the same way.
func requireTool(t testing.TB, name string) {
	t.Helper()
	testtool.Require(t, name)
}
