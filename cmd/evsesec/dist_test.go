package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
)

// distUnit is the systemd unit shipped in dist/.
const distUnit = "../../dist/evsesec.service"

// The unit passes `systemd-analyze verify` and scores as well hardened in `systemd-analyze
// security` (exposure at most 2.0 of 10). The unit names /usr/bin/evsesec, which verify checks
// exists; the copy verified names an executable that does (this test binary) instead.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := testtool.Require(t, "systemd-analyze")
	data, err := os.ReadFile(distUnit)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "ExecStart=/usr/bin/evsesec serve ") {
		t.Fatal("the unit does not start /usr/bin/evsesec serve")
	}
	unit := filepath.Join(t.TempDir(), "evsesec.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/bin/evsesec", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	// verify exits 0 on an unknown directive but reports it: any line about the unit fails.
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), "evsesec.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(analyze, "security", "--offline=yes", "--threshold=20", unit).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: exposure above 2.0 (%v)\n%s", err, out)
	}
}

// The hardening a reviewer expects is in the unit, the store is its one writable path, and the
// flags it starts serve with exist.
func TestSystemdUnitHardening(t *testing.T) {
	data, err := os.ReadFile(distUnit)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, d := range []string{
		"User=evsesec", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet=\n", "ProtectHome=yes", "SystemCallFilter=@system-service",
	} {
		if !strings.Contains(unit, d) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(d))
		}
	}
	// The store, nothing else: its lock file is inside it.
	if rw := regexp.MustCompile(`(?m)^ReadWritePaths=.*$`).FindAllString(unit, -1); len(rw) != 1 || rw[0] != "ReadWritePaths=/etc/everest/certs" {
		t.Errorf("writable paths %q, want only the store", rw)
	}
	m := regexp.MustCompile(`Environment="EVSESEC_ARGS=([^"]*)"`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("no default EVSESEC_ARGS")
	}
	// -h after the flags: serve parses them all and prints its usage; an unknown one fails.
	if _, errOut, code := runCLI(append(append([]string{"serve"}, strings.Fields(m[1])...), "-h")...); code != 0 {
		t.Errorf("serve does not take the unit's flags %q: exit %d\n%s", m[1], code, errOut)
	}
	if !strings.Contains(m[1], "--metrics 127.0.0.1:") {
		t.Errorf("the unit's metrics address is not on loopback: %q", m[1])
	}
}
