package store_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
)

// TestTPMLeafLifecycle runs the Plug&Charge leaf flow with the key in a software TPM: the CSR is
// signed by a TPM key (use_tpm=true), the key file is a TSS2 PRIVATE KEY that OpenSSL's tpm2
// provider signs with, the signed leaf installs and is selected with that key file, and ls shows
// where the key lives.
func TestTPMLeafLifecycle(t *testing.T) {
	sim := testtool.StartSWTPM(t)
	e := newEnv(t, envOptions{config: func(c *store.Config) { c.TPMAddress = sim.Address() }})

	var csr store.CSRResult
	if err := e.call("generate_certificate_signing_request", map[string]any{
		"certificate_type": "V2G", "country": "DE", "organization": "EVerest", "common": "SECCTPM", "use_tpm": true,
	}, &csr); err != nil || csr.Status != store.CSRAccepted {
		t.Fatalf("CSR with use_tpm: %v %+v\n%s", err, csr, e.logs)
	}
	keys, _ := filepath.Glob(e.path("client/cso/SECC_LEAF_*.tkey"))
	if len(keys) != 1 {
		t.Fatalf("want one .tkey key file, have %v", keys)
	}
	keyPEM := readFile(t, keys[0])
	if !strings.Contains(string(keyPEM), "-----BEGIN TSS2 PRIVATE KEY-----") {
		t.Fatalf("key file is not a TPM key file:\n%s", keyPEM)
	}
	requireMode(t, keys[0], 0o600)
	csrFile := filepath.Join(t.TempDir(), "csr.pem")
	writeFile(t, csrFile, []byte(csr.CSR), 0o644)
	runOpenSSL(t, nil, "req", "-in", csrFile, "-verify", "-noout")

	leaf := signCSR(t, csr.CSR, e.pki.CPOSubCA2, e.clock.Now().Add(-time.Minute), e.clock.Now().AddDate(3, 0, 0))
	chain := pemOf(leaf, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert)
	if res := e.s.UpdateLeafCertificate(chain, store.LeafV2G); res != store.InstallAccepted {
		t.Fatalf("install TPM-keyed leaf: %s\n%s", res, e.logs)
	}
	info := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
	if info.Status != store.InfoAccepted || info.Info.Key != keys[0] {
		t.Fatalf("leaf info: %+v, want key %s", info, keys[0])
	}
	found := false
	for _, r := range e.s.Inventory() {
		if r.InUse && r.LeafType == store.LeafV2G {
			found = true
			if r.KeyLocation != "tpm" || r.Key != keys[0] {
				t.Errorf("ls: key %s at %q, want %s in tpm", r.Key, r.KeyLocation, keys[0])
			}
		}
	}
	if !found {
		t.Error("ls: no V2G leaf in use")
	}

	// OpenSSL signs with the key file we wrote, through its tpm2 provider, and the signature
	// verifies with the installed certificate.
	dir := t.TempDir()
	msg, sig, certFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig"), filepath.Join(dir, "leaf.pem")
	writeFile(t, msg, []byte("firmware manifest"), 0o644)
	writeFile(t, certFile, []byte(pemOf(leaf)), 0o644)
	cmd := exec.Command("openssl", "dgst", "-sha256", "-provider", "tpm2", "-provider", "default",
		"-propquery", "?provider=tpm2", "-sign", keys[0], "-out", sig, msg)
	cmd.Env = append(os.Environ(), "TPM2OPENSSL_TCTI="+sim.TCTI())
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "true" && strings.Contains(string(out), "provider") {
			t.Skipf("OpenSSL's tpm2 provider is not usable here: %s", out)
		}
		t.Fatalf("openssl sign with the TPM key file: %v\n%s", err, out)
	}
	pub := runOpenSSL(t, nil, "x509", "-in", certFile, "-noout", "-pubkey")
	pubFile := filepath.Join(dir, "pub.pem")
	writeFile(t, pubFile, []byte(pub), 0o644)
	runOpenSSL(t, nil, "dgst", "-sha256", "-verify", pubFile, "-signature", sig, msg)

	// doctor says where the key lives.
	foundDoctor := false
	for _, f := range e.s.Diagnose() {
		if f.Path == keys[0] && strings.Contains(f.Problem, "held in the TPM") {
			foundDoctor = true
		}
	}
	if !foundDoctor {
		t.Errorf("doctor does not say the key %s is in the TPM: %+v", keys[0], e.s.Diagnose())
	}

	// The key counts as in use: GC leaves it alone.
	e.s.GarbageCollect()
	if !fileExists(keys[0]) {
		t.Fatal("GC removed the TPM key of the leaf in use")
	}
}

// TestTPMBackendPerLeafType: secc_key_backend: tpm makes every SECC CSR key in the TPM, without
// use_tpm.
func TestTPMBackendPerLeafType(t *testing.T) {
	sim := testtool.StartSWTPM(t)
	e := newEnv(t, envOptions{config: func(c *store.Config) {
		c.TPMAddress = sim.Address()
		c.SECCKeyBackend = "tpm"
	}})
	res := e.s.GenerateCSR(store.LeafV2G, "DE", "EVerest", "SECC2", false)
	if res.Status != store.CSRAccepted {
		t.Fatalf("CSR: %s\n%s", res.Status, e.logs)
	}
	if keys, _ := filepath.Glob(e.path("client/cso/SECC_LEAF_*.tkey")); len(keys) != 1 {
		t.Fatalf("want the key in the TPM (.tkey), have %v", keys)
	}
	// The CSMS leaf keeps its software keys.
	if res := e.s.GenerateCSR(store.LeafCSMS, "DE", "EVerest", "CP001", false); res.Status != store.CSRAccepted {
		t.Fatalf("CSMS CSR: %s", res.Status)
	}
	if keys, _ := filepath.Glob(e.path("client/csms/CSMS_LEAF_*.key")); len(keys) != 1 {
		t.Fatalf("want a software CSMS key, have %v", keys)
	}
}

// TestUseTPMWithoutTPM: asking for a TPM key without a TPM is KeyGenError and writes nothing (the
// reference silently made a software key).
func TestUseTPMWithoutTPM(t *testing.T) {
	if _, err := os.Stat("/dev/tpmrm0"); err == nil {
		t.Skip("this machine has a TPM at /dev/tpmrm0")
	}
	e := newEnv(t, envOptions{})
	before := snapshot(t, e.root)
	res := e.s.GenerateCSR(store.LeafV2G, "DE", "EVerest", "SECC", true)
	if res.Status != store.CSRKeyGenError || res.CSR != "" {
		t.Fatalf("use_tpm without TPM: %+v, want KeyGenError", res)
	}
	requireUnchanged(t, e.root, before, "use_tpm without a TPM")
	if !strings.Contains(e.logs.String(), "no TPM configured") {
		t.Errorf("the log does not say why:\n%s", e.logs)
	}
}
