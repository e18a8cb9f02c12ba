//go:build pkcs11

package store_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
)

// TestPKCS11LeafLifecycle keeps the SECC key in a PKCS#11 token (SoftHSM2): the CSR is signed in
// the token, the key file holds only the pkcs11: URI (no key material, no PIN), the signed leaf
// installs and is selected with that key file, ls says where the key lives, and deleting the leaf
// removes the token's key with the file.
func TestPKCS11LeafLifecycle(t *testing.T) {
	hsm := testtool.NewSoftHSM(t)
	e := newEnv(t, envOptions{config: func(c *store.Config) {
		c.PKCS11Module, c.PKCS11Token, c.PKCS11PIN = hsm.Module, testtool.SoftHSMToken, testtool.SoftHSMPIN
		c.SECCKeyBackend = "pkcs11"
	}})
	t.Cleanup(func() { e.s.Close() })
	csr := e.s.GenerateCSR(store.LeafV2G, "DE", "EVerest", "SECCHSM", false)
	if csr.Status != store.CSRAccepted {
		t.Fatalf("CSR in the token: %s\n%s", csr.Status, e.logs)
	}
	keys, _ := filepath.Glob(e.path("client/cso/SECC_LEAF_*.key"))
	if len(keys) != 1 {
		t.Fatalf("want one key file, have %v", keys)
	}
	keyFile := string(readFile(t, keys[0]))
	if !strings.HasPrefix(keyFile, "pkcs11:") || strings.Contains(keyFile, testtool.SoftHSMPIN) || strings.Contains(keyFile, "PRIVATE KEY") {
		t.Fatalf("key file should hold only the URI: %q", keyFile)
	}
	csrFile := filepath.Join(t.TempDir(), "csr.pem")
	writeFile(t, csrFile, []byte(csr.CSR), 0o644)
	runOpenSSL(t, nil, "req", "-in", csrFile, "-verify", "-noout")

	leaf := signCSR(t, csr.CSR, e.pki.CPOSubCA2, e.clock.Now().Add(-time.Minute), e.clock.Now().AddDate(3, 0, 0))
	if res := e.s.UpdateLeafCertificate(pemOf(leaf, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); res != store.InstallAccepted {
		t.Fatalf("install: %s\n%s", res, e.logs)
	}
	info := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
	if info.Status != store.InfoAccepted || info.Info.Key != keys[0] {
		t.Fatalf("leaf info %+v, want key %s", info, keys[0])
	}
	for _, r := range e.s.Inventory() {
		if r.InUse && r.LeafType == store.LeafV2G && r.KeyLocation != "pkcs11" {
			t.Errorf("ls: key location %q, want pkcs11", r.KeyLocation)
		}
	}
	h := hashOf(t, leaf, e.pki.CPOSubCA2.Cert)
	if res := e.s.DeleteCertificate(h); res != store.DeleteAccepted {
		t.Fatalf("delete: %s", res)
	}
	if fileExists(keys[0]) {
		t.Fatal("key file kept after deleting its leaf")
	}
}
