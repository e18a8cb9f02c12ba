package tpm

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	keyfile "github.com/foxboron/go-tpm-keyfiles"
	"github.com/google/go-tpm/tpm2"

	"github.com/evsesec/evsesec/keys"
)

// The fixtures in testdata were made by `openssl genpkey -provider tpm2 -provider default` with
// tpm2-openssl 1.1.1 against an swtpm whose state is gone: the keys can no longer sign anywhere,
// so these tests prove that the public key comes from the file alone.
func readPublicPEM(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestPublicKeyWithoutTPM(t *testing.T) {
	// Nothing listens on port 1: any TPM access would fail with ErrUnavailable.
	b, err := Open(Config{Address: "tcp://127.0.0.1:1", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, pub string
		alg      keys.Algorithm
	}{
		{"testdata/openssl-p256.tss2.pem", "testdata/openssl-p256.pub.pem", keys.P256},
		{"testdata/openssl-rsa2048.tss2.pem", "testdata/openssl-rsa2048.pub.pem", keys.RSA2048},
	} {
		t.Run(string(tc.alg), func(t *testing.T) {
			keyFile, err := os.ReadFile(tc.key)
			if err != nil {
				t.Fatal(err)
			}
			if k := keys.KindOf(keyFile); k != keys.KindTPM {
				t.Fatalf("KindOf = %q, want tpm", k)
			}
			pub, err := b.PublicKey(keyFile)
			if err != nil {
				t.Fatalf("PublicKey: %v", err)
			}
			if !keys.PublicKeysEqual(pub, readPublicPEM(t, tc.pub)) {
				t.Fatal("public key differs from `openssl pkey -pubout`")
			}
			if alg, err := keys.AlgorithmOf(pub); err != nil || alg != tc.alg {
				t.Fatalf("AlgorithmOf = %v, %v; want %v", alg, err, tc.alg)
			}
			if parent, err := Parent(keyFile); err != nil || parent != OwnerHierarchy {
				t.Fatalf("Parent = 0x%x, %v; want owner", parent, err)
			}
			// A signer can be made without the TPM too; only Sign needs it.
			s, err := b.Signer(keyFile)
			if err != nil {
				t.Fatalf("Signer: %v", err)
			}
			if !keys.PublicKeysEqual(s.Public(), pub) {
				t.Fatal("Signer.Public differs from PublicKey")
			}
			digest := make([]byte, 32)
			if _, err := s.Sign(nil, digest, crypto.SHA256); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Sign without TPM: %v, want ErrUnavailable", err)
			}
			// A certificate before the key, as OpenSSL allows, is skipped.
			withCert := append([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), keyFile...)
			if pub2, err := PublicKey(withCert); err != nil || !keys.PublicKeysEqual(pub2, pub) {
				t.Fatalf("PublicKey after a certificate block: %v", err)
			}
		})
	}
}

// tpmKeyPEM builds a key file around the public area of the P-256 fixture, with changes.
func tpmKeyPEM(t *testing.T, change func(k *keyfile.TPMKey)) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	k, err := keyfile.Parse(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	change(k)
	return pem.EncodeToMemory(&pem.Block{Type: keys.PEMTypeTPM, Bytes: keyfile.Marshal(k)})
}

func TestDecodeErrors(t *testing.T) {
	b, err := Open(Config{Address: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		t.Fatal(err)
	}
	badPoint := tpmKeyPEM(t, func(k *keyfile.TPMKey) {
		pub, _ := k.Pubkey.Contents()
		ecc, _ := pub.Unique.ECC()
		ecc.X.Buffer = bytes.Repeat([]byte{1}, 32)
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, ecc)
		k.Pubkey = tpm2.New2B(*pub)
	})
	sealed := tpmKeyPEM(t, func(k *keyfile.TPMKey) { k.Keytype = keyfile.OIDSealedKey })
	withAuth := tpmKeyPEM(t, func(k *keyfile.TPMKey) { k.EmptyAuth = false })
	withPolicy := tpmKeyPEM(t, func(k *keyfile.TPMKey) {
		k.Policy = []*keyfile.TPMPolicy{{CommandCode: int(tpm2.TPMCCPolicyPCR), CommandPolicy: []byte{0}}}
	})
	damaged := bytes.Replace(good, []byte("MIHw"), []byte("M!Hw"), 1)
	truncatedDER := pem.EncodeToMemory(&pem.Block{Type: keys.PEMTypeTPM, Bytes: []byte{0x30, 0x03, 0x06, 0x01, 0x00}})
	software := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x00}})

	for _, tc := range []struct {
		name      string
		data      []byte
		publicErr error // from PublicKey
		signerErr error // from Signer
	}{
		{"empty", nil, keys.ErrNoKey, keys.ErrNoKey},
		{"software key", software, keys.ErrNoKey, keys.ErrNoKey},
		{"bad base64", damaged, keys.ErrMalformed, keys.ErrMalformed},
		{"truncated DER", truncatedDER, keys.ErrMalformed, keys.ErrMalformed},
		{"point not on curve", badPoint, keys.ErrMalformed, keys.ErrMalformed},
		{"sealed data", sealed, keys.ErrUnsupported, keys.ErrUnsupported},
		{"needs auth", withAuth, nil, keys.ErrUnsupported},
		{"policy", withPolicy, nil, keys.ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.PublicKey(tc.data)
			if !errors.Is(err, tc.publicErr) || (tc.publicErr == nil) != (err == nil) {
				t.Errorf("PublicKey: %v, want %v", err, tc.publicErr)
			}
			_, err = b.Signer(tc.data)
			if !errors.Is(err, tc.signerErr) {
				t.Errorf("Signer: %v, want %v", err, tc.signerErr)
			}
			if err != nil && strings.Contains(err.Error(), "MIHw") {
				t.Errorf("error leaks key data: %v", err)
			}
		})
	}
}

func TestEncodeHasNoDescription(t *testing.T) {
	data := tpmKeyPEM(t, func(k *keyfile.TPMKey) { k.Description = "evsesec" })
	block, _ := pem.Decode(data)
	k, err := keyfile.Parse(block.Bytes)
	if err != nil || k.Description != "evsesec" {
		t.Fatalf("fixture: %v %q", err, k.Description)
	}
	out := encode(k)
	block, _ = pem.Decode(out)
	k2, err := keyfile.Parse(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Description != "" || bytes.Contains(block.Bytes, []byte("evsesec")) {
		t.Fatal("encode wrote the description field, which tpm2-openssl 1.1.1 rejects")
	}
}

func FuzzPublicKey(f *testing.F) {
	good, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		f.Fatal(err)
	}
	block, _ := pem.Decode(good)
	f.Add(block.Bytes)
	rsa, _ := os.ReadFile("testdata/openssl-rsa2048.tss2.pem")
	if block, _ := pem.Decode(rsa); block != nil {
		f.Add(block.Bytes)
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		data := pem.EncodeToMemory(&pem.Block{Type: keys.PEMTypeTPM, Bytes: der})
		pub, err := PublicKey(data)
		if err == nil && pub == nil {
			t.Fatal("nil key without error")
		}
		if err != nil && !errors.Is(err, keys.ErrMalformed) && !errors.Is(err, keys.ErrUnsupported) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
