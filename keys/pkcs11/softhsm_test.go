//go:build pkcs11

package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/keys"
)

const (
	testToken = testtool.SoftHSMToken
	testSOPIN = testtool.SoftHSMSOPIN
	testPIN   = testtool.SoftHSMPIN
)

// softHSM is the SoftHSM token of internal/testtool, with the names these tests use.
type softHSM struct{ *testtool.SoftHSM }

func newSoftHSM(t *testing.T, extraLabels ...string) *softHSM {
	h := testtool.NewSoftHSM(t, extraLabels...)
	return &softHSM{h}
}

// open opens a backend on the test token and closes it when the test ends (which unloads the
// module, so that the next test's SOFTHSM2_CONF takes effect).
func (h *softHSM) open(t *testing.T, token, pin string) *Backend {
	t.Helper()
	b, err := Open(Config{ModulePath: h.Module, TokenLabel: token, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// verify checks a signature over digest with pub (internal/testtool).
func verify(t *testing.T, pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	testtool.VerifySignature(t, pub, digest, sig, opts)
}

// csrDER makes a CSR signed by s and checks its signature.
func csrDER(t *testing.T, s crypto.Signer) []byte {
	t.Helper()
	return testtool.SignedCSR(t, s, "CSMS-HSM")
}

func TestSoftHSMCreateKey(t *testing.T) {
	h := newSoftHSM(t)
	b := h.open(t, testToken, testPIN)
	if err := b.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, alg := range keys.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			keyFile, s, err := b.CreateKey(alg)
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if k := keys.KindOf(keyFile); k != keys.KindPKCS11 {
				t.Fatalf("KindOf(%q) = %q", keyFile, k)
			}
			u, err := ParseKeyFile(keyFile)
			if err != nil || u.Token != testToken || len(u.ID) != 16 || u.Type != "private" || !strings.HasPrefix(u.Object, "evsesec-") {
				t.Fatalf("key file %q: %+v, %v", keyFile, u, err)
			}
			if strings.Contains(string(keyFile), testPIN) {
				t.Fatal("key file holds the PIN")
			}
			pub, err := b.PublicKey(keyFile)
			if err != nil {
				t.Fatalf("PublicKey: %v", err)
			}
			if !keys.PublicKeysEqual(pub, s.Public()) {
				t.Fatal("PublicKey differs from the created key")
			}
			if got, _ := keys.AlgorithmOf(pub); got != alg {
				t.Fatalf("algorithm %v, want %v", got, alg)
			}
			reopened, err := b.Signer(keyFile)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			for _, hash := range []crypto.Hash{crypto.SHA256, crypto.SHA384} {
				d := hash.New()
				d.Write([]byte("evsesec"))
				digest := d.Sum(nil)
				sig, err := reopened.Sign(rand.Reader, digest, hash)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				verify(t, pub, digest, sig, hash)
			}
			if _, ok := pub.(*rsa.PublicKey); ok {
				digest := sha256.Sum256([]byte("tls 1.3"))
				opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
				sig, err := reopened.Sign(rand.Reader, digest[:], opts)
				if err != nil {
					t.Fatalf("PSS Sign: %v", err)
				}
				verify(t, pub, digest[:], sig, opts)
			}
			csrDER(t, reopened)
		})
	}
}

func TestSoftHSMLookupErrors(t *testing.T) {
	h := newSoftHSM(t, "other")
	// Wrong PIN, unknown token, missing module: ErrUnavailable, and the PIN is not in the
	// message. This runs before any backend logs in: PKCS#11 login state belongs to the process,
	// so once one backend has logged in, another with a wrong PIN is let in too.
	for _, cfg := range []Config{
		{ModulePath: h.Module, TokenLabel: testToken, PIN: "0000"},
		{ModulePath: h.Module, TokenLabel: "missing", PIN: testPIN},
		{ModulePath: filepath.Join(h.Dir, "no-module.so"), TokenLabel: testToken, PIN: testPIN},
	} {
		bad, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		err = bad.Check()
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Check(%s) = %v, want ErrUnavailable", cfg, err)
		}
		if err != nil && strings.Contains(err.Error(), cfg.PIN) {
			t.Errorf("error leaks the PIN: %v", err)
		}
		if _, _, err := bad.CreateKey(keys.P256); !errors.Is(err, ErrUnavailable) {
			t.Errorf("CreateKey(%s) = %v, want ErrUnavailable", cfg, err)
		}
		bad.Close()
	}

	b := h.open(t, testToken, testPIN)
	keyFile, _, err := b.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := ParseKeyFile(keyFile)

	// Found by label alone and by id alone, as URIs written by hand or by other tools are.
	for _, v := range []URI{{Token: testToken, Object: u.Object}, {ID: u.ID}} {
		if _, err := b.PublicKey(v.KeyFile()); err != nil {
			t.Errorf("PublicKey(%s): %v", v, err)
		}
	}
	for _, tc := range []struct {
		name    string
		keyFile []byte
		want    error
	}{
		{"unknown object", URI{Token: testToken, Object: "nope"}.KeyFile(), keys.ErrNoKey},
		{"other token", URI{Token: "other", Object: u.Object}.KeyFile(), keys.ErrUnsupported},
		{"certificate", URI{Token: testToken, Object: u.Object, Type: "cert"}.KeyFile(), keys.ErrUnsupported},
		{"no object", []byte("pkcs11:token=evsesec\n"), keys.ErrMalformed},
		{"bad uri", []byte("pkcs11:id=%zz\n"), keys.ErrMalformed},
		{"software key file", []byte("-----BEGIN PRIVATE KEY-----\n"), keys.ErrNoKey},
	} {
		if _, err := b.Signer(tc.keyFile); !errors.Is(err, tc.want) {
			t.Errorf("%s: Signer = %v, want %v", tc.name, err, tc.want)
		}
	}

	// Delete removes the key from the token; deleting again is fine.
	if err := b.DeleteKey(keyFile); err != nil {
		t.Fatalf("DeleteKey: %v", err)
	}
	if _, err := b.PublicKey(keyFile); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("PublicKey after DeleteKey = %v, want ErrNoKey", err)
	}
	if err := b.DeleteKey(keyFile); err != nil {
		t.Fatalf("second DeleteKey: %v", err)
	}
	// Through the dispatcher too.
	keyFile2, _, err := b.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	router := keys.Backends{PKCS11: b}
	if _, err := router.PublicKey(keyFile2); err != nil {
		t.Fatalf("Backends.PublicKey: %v", err)
	}
	if err := router.DeleteKey(keyFile2); err != nil {
		t.Fatalf("Backends.DeleteKey: %v", err)
	}
	if _, err := router.PublicKey(keyFile2); !errors.Is(err, keys.ErrNoKey) {
		t.Fatalf("after Backends.DeleteKey: %v", err)
	}

	// Closed backend.
	b.Close()
	if _, err := b.Signer(keyFile2); !errors.Is(err, ErrClosed) {
		t.Fatalf("Signer after Close = %v, want ErrClosed", err)
	}
}

func TestSoftHSMConcurrent(t *testing.T) {
	h := newSoftHSM(t)
	b := h.open(t, testToken, testPIN)
	keyFile, _, err := b.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := b.Signer(keyFile)
			if err != nil {
				errs <- err
				return
			}
			digest := sha256.Sum256([]byte{byte(i)})
			sig, err := s.Sign(nil, digest[:], crypto.SHA256)
			if err == nil && !ecdsa.VerifyASN1(s.Public().(*ecdsa.PublicKey), digest[:], sig) {
				err = errors.New("bad signature")
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Sign: %v", err)
		}
	}
}

// opensslEngineConf writes an OpenSSL configuration that loads libp11's pkcs11 engine with the
// SoftHSM module, so the test does not depend on p11-kit's proxy module.
func opensslEngineConf(t *testing.T, h *softHSM) string {
	t.Helper()
	conf := filepath.Join(h.Dir, "openssl.cnf")
	text := `openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = ` + h.Module + `
init = 0
`
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// run runs a tool with SOFTHSM2_CONF (inherited) and the given extra environment.
func run(t *testing.T, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// requireEngine skips (or fails on CI) when libp11's pkcs11 engine cannot be loaded.
func requireEngine(t *testing.T, env []string) {
	t.Helper()
	cmd := exec.Command("openssl", "engine", "-t", "pkcs11")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("OpenSSL's pkcs11 engine is not usable (install libengine-pkcs11-openssl): %v\n%s", err, out)
		}
		t.Skipf("OpenSSL's pkcs11 engine is not usable (install libengine-pkcs11-openssl): %v", err)
	}
}

// TestSoftHSMOpenSSL proves the token keys interoperate with OpenSSL through libp11's pkcs11
// engine: OpenSSL signs with the URI of a key we created and we verify with our PublicKey, our
// signature verifies in OpenSSL with the exported public key, our CSR passes
// `openssl req -verify`, OpenSSL's CSR from our URI carries our key, and a key pair made by
// pkcs11-tool works in our backend.
func TestSoftHSMOpenSSL(t *testing.T) {
	testtool.Require(t, "openssl")
	h := newSoftHSM(t)
	env := []string{"OPENSSL_CONF=" + opensslEngineConf(t, h)}
	requireEngine(t, env)
	b := h.open(t, testToken, testPIN)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, []byte("signed firmware"), 0o600); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("signed firmware"))

	for _, alg := range []keys.Algorithm{keys.P256, keys.RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			keyFile, s, err := b.CreateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := ParseKeyFile(keyFile)
			engineURI := u.String() + "?pin-value=" + testPIN

			// OpenSSL signs through the engine with our key's URI; we verify.
			sigPath := filepath.Join(dir, string(alg)+".openssl.sig")
			run(t, env, "openssl", "dgst", "-engine", "pkcs11", "-keyform", "engine", "-sha256",
				"-sign", engineURI, "-out", sigPath, data)
			sig, err := os.ReadFile(sigPath)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := b.PublicKey(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, pub, digest[:], sig, crypto.SHA256)

			// Our signature verifies in OpenSSL with the exported public key.
			pubDER, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			pubPath := filepath.Join(dir, string(alg)+".pub.pem")
			os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
			ours, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			oursPath := filepath.Join(dir, string(alg)+".ours.sig")
			os.WriteFile(oursPath, ours, 0o600)
			run(t, nil, "openssl", "dgst", "-sha256", "-verify", pubPath, "-signature", oursPath, data)

			// Our CSR verifies in OpenSSL.
			csrPath := filepath.Join(dir, string(alg)+".csr")
			os.WriteFile(csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER(t, s)}), 0o600)
			run(t, nil, "openssl", "req", "-verify", "-noout", "-in", csrPath)

			// OpenSSL's CSR through the engine carries our key.
			out := run(t, env, "openssl", "req", "-new", "-engine", "pkcs11", "-keyform", "engine",
				"-key", engineURI, "-subj", "/CN=openssl-with-evsesec-key")
			block, _ := pem.Decode(out[strings.Index(string(out), "-----BEGIN"):])
			if block == nil {
				t.Fatalf("openssl req printed no CSR:\n%s", out)
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil || !keys.PublicKeysEqual(csr.PublicKey, pub) {
				t.Fatalf("OpenSSL's CSR: signature %v, same key %v", err, keys.PublicKeysEqual(csr.PublicKey, pub))
			}
		})
	}

	t.Run("pkcs11-tool key in ours", func(t *testing.T) {
		tool := testtool.Require(t, "pkcs11-tool")
		run(t, nil, tool, "--module", h.Module, "--token-label", testToken, "--login", "--pin", testPIN,
			"--keypairgen", "--key-type", "EC:prime256v1", "--label", "secc", "--id", "5ecc")
		keyFile := []byte("# made by pkcs11-tool\npkcs11:token=evsesec;object=secc;type=private\n")
		s, err := b.Signer(keyFile)
		if err != nil {
			t.Fatalf("Signer of pkcs11-tool's key: %v", err)
		}
		pubPath := filepath.Join(dir, "secc.pub.der")
		run(t, nil, tool, "--module", h.Module, "--token-label", testToken, "--login", "--pin", testPIN,
			"--read-object", "--type", "pubkey", "--label", "secc", "--output-file", pubPath)
		der, err := os.ReadFile(pubPath)
		if err != nil {
			t.Fatal(err)
		}
		toolPub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatalf("pkcs11-tool's public key: %v", err)
		}
		if !keys.PublicKeysEqual(s.Public(), toolPub) {
			t.Fatal("our public key differs from pkcs11-tool's")
		}
		sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, toolPub, digest[:], sig, crypto.SHA256)
	})
}
