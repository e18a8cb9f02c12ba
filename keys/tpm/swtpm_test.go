package tpm

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
)

// swtpm is the simulator of internal/testtool, with the names these tests use.
type swtpm struct{ *testtool.SWTPM }

func (s *swtpm) address() string { return s.Address() }
func (s *swtpm) tcti() string    { return s.TCTI() }

func startSWTPM(t *testing.T) *swtpm { return &swtpm{testtool.StartSWTPM(t)} }

// opensslTPM runs openssl with the tpm2 provider pointed at the simulator and returns its
// combined output.
func opensslTPM(t *testing.T, sim *swtpm, args ...string) []byte {
	t.Helper()
	bin := testtool.Require(t, "openssl")
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TPM2OPENSSL_TCTI="+sim.tcti())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	return out
}

// requireTPM2Provider skips (or fails on CI) when OpenSSL's tpm2 provider is not installed.
func requireTPM2Provider(t *testing.T, sim *swtpm) {
	t.Helper()
	bin := testtool.Require(t, "openssl")
	cmd := exec.Command(bin, "list", "-providers", "-provider", "tpm2")
	cmd.Env = append(os.Environ(), "TPM2OPENSSL_TCTI="+sim.tcti())
	if out, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(out, []byte("tpm2")) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenSSL's tpm2 provider is not usable (install tpm2-openssl and libtss2-tcti-swtpm0): %v\n%s", err, out)
		}
		t.Skipf("OpenSSL's tpm2 provider is not usable (install tpm2-openssl and libtss2-tcti-swtpm0): %v", err)
	}
}

// startSWTPMUnix starts swtpm serving TPM commands on a Unix socket in t.TempDir() (no control
// channel) and stops it when the test ends. It returns the socket path.
func startSWTPMUnix(t *testing.T) string {
	t.Helper()
	bin := testtool.Require(t, "swtpm")
	dir := t.TempDir()
	sock := dir + "/tpm.sock"
	var out bytes.Buffer
	cmd := exec.Command(bin, "socket", "--tpm2",
		"--server", "type=unixio,path="+sock,
		"--tpmstate", "dir="+dir,
		"--flags", "not-need-init,startup-clear")
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting swtpm: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("swtpm exited: %v\n%s", err, out.String())
		default:
		}
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("swtpm did not listen on %s", sock)
	return ""
}
