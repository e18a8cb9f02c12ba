package testtool

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The SoftHSM token NewSoftHSM makes: its label and PINs.
const (
	SoftHSMToken = "evsesec"
	SoftHSMSOPIN = "12345678"
	SoftHSMPIN   = "5678"
)

// softHSMModules are where Debian (and other distributions) put SoftHSM2's module.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// SoftHSM is a SoftHSM2 token made for one test.
type SoftHSM struct {
	// Module is the path of libsofthsm2.so; Conf the SOFTHSM2_CONF in use.
	Module string
	Conf   string
	Dir    string
}

// NewSoftHSM writes a SoftHSM2 configuration whose token directory is in t.TempDir(), points
// SOFTHSM2_CONF at it (for this process and the tools it starts) and runs
//
//	softhsm2-util --init-token --free --label evsesec --so-pin 12345678 --pin 5678
//
// (and the same for each extra label). The module is loaded by the backend, after this.
func NewSoftHSM(t *testing.T, extraLabels ...string) *SoftHSM {
	t.Helper()
	util := Require(t, "softhsm2-util")
	module := ""
	for _, m := range softHSMModules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if module == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("softhsm2-util is installed but libsofthsm2.so was not found")
		}
		t.Skip("libsofthsm2.so not found")
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	for _, label := range append([]string{SoftHSMToken}, extraLabels...) {
		out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", SoftHSMSOPIN, "--pin", SoftHSMPIN).CombinedOutput()
		if err != nil {
			t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
		}
	}
	return &SoftHSM{Module: module, Conf: conf, Dir: dir}
}
