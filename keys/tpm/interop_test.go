package tpm

import (
	"github.com/evsesec/evsesec/internal/testtool"

	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	keyfile "github.com/foxboron/go-tpm-keyfiles"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/evsesec/evsesec/keys"
)

// These tests need swtpm (and, for the OpenSSL parts, tpm2-openssl with the swtpm TCTI). One
// simulator serves all subtests of a test.

// verify checks a signature over digest with pub (internal/testtool).
func verify(t *testing.T, pub crypto.PublicKey, digest, sig []byte, opts crypto.SignerOpts) {
	t.Helper()
	testtool.VerifySignature(t, pub, digest, sig, opts)
}

// csrPEM makes a CSR signed by s, as the store's generate_certificate_signing_request does.
func csrPEM(t *testing.T, s crypto.Signer) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: testtool.SignedCSR(t, s, "SECC-TPM")})
}

func TestSWTPMCreateKey(t *testing.T) {
	sim := startSWTPM(t)
	b, err := Open(Config{Address: sim.address()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, alg := range keys.Algorithms() {
		t.Run(string(alg), func(t *testing.T) {
			keyFile, s, err := b.CreateKey(alg)
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			if k := keys.KindOf(keyFile); k != keys.KindTPM {
				t.Fatalf("KindOf = %q", k)
			}
			if !bytes.HasPrefix(keyFile, []byte("-----BEGIN TSS2 PRIVATE KEY-----\n")) {
				t.Fatalf("key file does not start with the TSS2 PEM header:\n%s", keyFile)
			}
			block, _ := pem.Decode(keyFile)
			tk, err := keyfile.Parse(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if tk.Description != "" || !tk.EmptyAuth || uint32(tk.Parent) != OwnerHierarchy || !tk.Keytype.Equal(keyfile.OIDLoadableKey) {
				t.Fatalf("key file fields: description %q, emptyAuth %v, parent 0x%x, type %v", tk.Description, tk.EmptyAuth, tk.Parent, tk.Keytype)
			}
			// PublicKey from the file alone equals what the TPM reported.
			pub, err := PublicKey(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			if !keys.PublicKeysEqual(pub, s.Public()) {
				t.Fatal("PublicKey(file) differs from the created signer's key")
			}
			if got, _ := keys.AlgorithmOf(pub); got != alg {
				t.Fatalf("algorithm %v, want %v", got, alg)
			}
			// The returned signer and a signer reopened from the file both sign.
			reopened, err := b.Signer(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
				d := h.New()
				d.Write([]byte("evsesec"))
				digest := d.Sum(nil)
				for _, signer := range []crypto.Signer{s, reopened} {
					sig, err := signer.Sign(rand.Reader, digest, h)
					if err != nil {
						t.Fatalf("Sign %v: %v", h, err)
					}
					verify(t, pub, digest, sig, h)
				}
			}
			if alg == keys.RSA2048 {
				digest := sha256.Sum256([]byte("tls 1.3"))
				opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
				sig, err := s.Sign(rand.Reader, digest[:], opts)
				if err != nil {
					t.Fatalf("PSS Sign: %v", err)
				}
				verify(t, pub, digest[:], sig, opts)
			}
			csrPEM(t, s)
		})
	}
}

// TestSWTPMOpenSSL proves the key files interoperate with OpenSSL's tpm2 provider both ways:
// a CSR signed in the TPM through our backend verifies with `openssl req -verify`, OpenSSL signs
// with the key file we wrote, and a key OpenSSL generated signs through our backend.
func TestSWTPMOpenSSL(t *testing.T) {
	sim := startSWTPM(t)
	requireTPM2Provider(t, sim)
	b, err := Open(Config{Address: sim.address()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, []byte("firmware image or TLS transcript"), 0o600); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("firmware image or TLS transcript"))

	for _, alg := range []keys.Algorithm{keys.P256, keys.RSA2048} {
		t.Run("ours in openssl "+string(alg), func(t *testing.T) {
			keyFile, s, err := b.CreateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			keyPath := filepath.Join(dir, string(alg)+".tkey")
			if err := os.WriteFile(keyPath, keyFile, 0o600); err != nil {
				t.Fatal(err)
			}
			// Our CSR verifies in OpenSSL.
			csrPath := filepath.Join(dir, string(alg)+".csr")
			if err := os.WriteFile(csrPath, csrPEM(t, s), 0o600); err != nil {
				t.Fatal(err)
			}
			opensslTPM(t, sim, "req", "-verify", "-noout", "-in", csrPath)

			// OpenSSL signs with our key file through the TPM; we verify with PublicKey.
			sigPath := filepath.Join(dir, string(alg)+".sig")
			opensslTPM(t, sim, "dgst", "-provider", "tpm2", "-provider", "default", "-propquery", "?provider=tpm2",
				"-sha256", "-sign", keyPath, "-out", sigPath, data)
			sig, err := os.ReadFile(sigPath)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := PublicKey(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, pub, digest[:], sig, crypto.SHA256)

			// OpenSSL's own CSR with our key file carries our public key.
			out := opensslTPM(t, sim, "req", "-new", "-provider", "tpm2", "-provider", "default",
				"-key", keyPath, "-subj", "/CN=openssl-with-evsesec-key")
			block, _ := pem.Decode(out)
			if block == nil {
				t.Fatalf("openssl req printed no CSR:\n%s", out)
			}
			csr, err := x509.ParseCertificateRequest(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil || !keys.PublicKeysEqual(csr.PublicKey, pub) {
				t.Fatalf("OpenSSL's CSR with our key: signature %v, same key %v", err, keys.PublicKeysEqual(csr.PublicKey, pub))
			}
		})
	}

	for _, tc := range []struct {
		name string
		args []string
		alg  keys.Algorithm
	}{
		{"openssl P-256 in ours", []string{"-algorithm", "EC", "-pkeyopt", "group:P-256"}, keys.P256},
		{"openssl RSA-2048 in ours", []string{"-algorithm", "RSA", "-pkeyopt", "bits:2048"}, keys.RSA2048},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keyPath := filepath.Join(dir, "openssl-"+string(tc.alg)+".pem")
			pubPath := keyPath + ".pub"
			opensslTPM(t, sim, append([]string{"genpkey", "-provider", "tpm2", "-provider", "default", "-out", keyPath}, tc.args...)...)
			opensslTPM(t, sim, "pkey", "-provider", "tpm2", "-provider", "default", "-in", keyPath, "-pubout", "-out", pubPath)
			keyFile, err := os.ReadFile(keyPath)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := b.PublicKey(keyFile)
			if err != nil {
				t.Fatalf("PublicKey of OpenSSL's key: %v", err)
			}
			if !keys.PublicKeysEqual(pub, readPublicPEM(t, pubPath)) {
				t.Fatal("PublicKey differs from `openssl pkey -pubout`")
			}
			s, err := b.Signer(keyFile)
			if err != nil {
				t.Fatalf("Signer of OpenSSL's key: %v", err)
			}
			sig, err := s.Sign(rand.Reader, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatalf("Sign with OpenSSL's key: %v", err)
			}
			verify(t, pub, digest[:], sig, crypto.SHA256)
			// And OpenSSL accepts that signature with the exported public key.
			sigPath := keyPath + ".sig"
			if err := os.WriteFile(sigPath, sig, 0o600); err != nil {
				t.Fatal(err)
			}
			opensslTPM(t, sim, "dgst", "-sha256", "-verify", pubPath, "-signature", sigPath, data)
			// A CSR signed through our backend with OpenSSL's key.
			csrPath := keyPath + ".csr"
			if err := os.WriteFile(csrPath, csrPEM(t, s), 0o600); err != nil {
				t.Fatal(err)
			}
			opensslTPM(t, sim, "req", "-verify", "-noout", "-in", csrPath)
		})
	}
}

// TestSWTPMPersistentParent creates keys under a persistent storage key (0x81000001), as an
// integrator who provisions one would configure, and checks OpenSSL loads them too.
func TestSWTPMPersistentParent(t *testing.T) {
	sim := startSWTPM(t)
	const handle = 0x81000001
	conn, err := Open(Config{Address: sim.address()})
	if err != nil {
		t.Fatal(err)
	}
	// Provision: the standard ECC storage key, made persistent.
	err = conn.withTPM(func(tp transport.TPMCloser) error {
		srk, err := tpm2.CreatePrimary{
			PrimaryHandle: tpm2.TPMRHOwner,
			InPublic:      tpm2.New2B(keyfile.ECCSRK_H2_Template),
		}.Execute(tp)
		if err != nil {
			return err
		}
		defer tpm2.FlushContext{FlushHandle: srk.ObjectHandle}.Execute(tp)
		_, err = tpm2.EvictControl{
			Auth:             tpm2.TPMRHOwner,
			ObjectHandle:     &tpm2.NamedHandle{Handle: srk.ObjectHandle, Name: srk.Name},
			PersistentHandle: handle,
		}.Execute(tp)
		return err
	})
	if err != nil {
		t.Fatalf("provisioning a persistent parent: %v", err)
	}
	b, err := Open(Config{Address: sim.address(), ParentHandle: handle})
	if err != nil {
		t.Fatal(err)
	}
	keyFile, s, err := b.CreateKey(keys.P256)
	if err != nil {
		t.Fatalf("CreateKey under 0x%x: %v", handle, err)
	}
	if p, err := Parent(keyFile); err != nil || p != handle {
		t.Fatalf("Parent = 0x%x, %v", p, err)
	}
	csr := csrPEM(t, s)
	// The parent stays: a second key and a reopened signer still work.
	s2, err := b.Signer(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("again"))
	sig, err := s2.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("second Sign: %v", err)
	}
	verify(t, s.Public(), digest[:], sig, crypto.SHA256)

	requireTPM2Provider(t, sim)
	dir := t.TempDir()
	keyPath, csrPath := filepath.Join(dir, "k.tkey"), filepath.Join(dir, "r.csr")
	os.WriteFile(keyPath, keyFile, 0o600)
	os.WriteFile(csrPath, csr, 0o600)
	opensslTPM(t, sim, "req", "-verify", "-noout", "-in", csrPath)
	opensslTPM(t, sim, "req", "-new", "-provider", "tpm2", "-provider", "default", "-key", keyPath, "-subj", "/CN=persistent")
}

// TestSWTPMConcurrentAndClosed signs from several goroutines at once (run with -race) and checks
// that a closed backend and an unreachable TPM fail with their sentinels.
func TestSWTPMConcurrentAndClosed(t *testing.T) {
	sim := startSWTPM(t)
	b, err := Open(Config{Address: sim.address()})
	if err != nil {
		t.Fatal(err)
	}
	keyFile, s, err := b.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
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

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(nil)
	if _, err := s.Sign(nil, digest[:], crypto.SHA256); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sign after Close: %v, want ErrClosed", err)
	}
	if _, _, err := b.CreateKey(keys.P256); !errors.Is(err, ErrClosed) {
		t.Fatalf("CreateKey after Close: %v, want ErrClosed", err)
	}
	if _, err := b.PublicKey(keyFile); err != nil {
		t.Fatalf("PublicKey after Close: %v", err)
	}

	for _, cfg := range []Config{
		{Device: filepath.Join(t.TempDir(), "no-tpm")},
		{Address: "unix://" + filepath.Join(t.TempDir(), "no-sock")},
	} {
		gone, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := gone.CreateKey(keys.P256); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("CreateKey without a TPM (%+v): %v, want ErrUnavailable", cfg, err)
		}
		if err := gone.Check(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Check without a TPM: %v, want ErrUnavailable", err)
		}
	}
}

// TestSWTPMUnixSocket reaches the simulator through a Unix socket, in both address spellings.
func TestSWTPMUnixSocket(t *testing.T) {
	sock := startSWTPMUnix(t)
	for _, addr := range []string{"unix://" + sock, "swtpm:path=" + sock} {
		b, err := Open(Config{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(); err != nil {
			t.Fatalf("Check(%s): %v", addr, err)
		}
		keyFile, s, err := b.CreateKey(keys.P256)
		if err != nil {
			t.Fatalf("CreateKey(%s): %v", addr, err)
		}
		csrPEM(t, s)
		if pub, err := PublicKey(keyFile); err != nil || !keys.PublicKeysEqual(pub, s.Public()) {
			t.Fatalf("PublicKey: %v", err)
		}
	}
}
