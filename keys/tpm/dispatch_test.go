package tpm

// Tests of keys.KindOf and keys.Backends (keys/kind.go). They live here because they need a TPM
// key file and a TPM backend, which the keys package cannot import.

import (
	"errors"
	"os"
	"testing"

	"github.com/evsesec/evsesec/keys"
)

func TestKindOf(t *testing.T) {
	tpmKey, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		t.Fatal(err)
	}
	software, _, err := keys.FileBackend{}.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	encrypted, _, err := keys.FileBackend{Password: []byte("pw")}.CreateKey(keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data string
		want keys.Kind
	}{
		{"empty", "", keys.KindFile},
		{"software", string(software), keys.KindFile},
		{"encrypted", string(encrypted), keys.KindFile},
		{"garbage", "\x00\x01garbage", keys.KindFile},
		{"tpm", string(tpmKey), keys.KindTPM},
		{"certificate then tpm", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + string(tpmKey), keys.KindTPM},
		{"damaged tpm", "-----BEGIN TSS2 PRIVATE KEY-----\n!!!\n", keys.KindTPM},
		{"tpm marker mid-line", "x -----BEGIN TSS2 PRIVATE KEY-----\n", keys.KindFile},
		{"pkcs11", "pkcs11:token=evsesec;object=secc\n", keys.KindPKCS11},
		{"pkcs11 no newline", "pkcs11:object=secc", keys.KindPKCS11},
		{"pkcs11 upper case", "PKCS11:object=secc\n", keys.KindPKCS11},
		{"pkcs11 after comments", "# the SECC key\n\n  pkcs11:id=%01\n", keys.KindPKCS11},
		{"pkcs11 after text", "hello\npkcs11:id=%01\n", keys.KindFile},
		{"pkcs11 in a PEM file", string(software) + "pkcs11:id=%01\n", keys.KindFile},
	} {
		if got := keys.KindOf([]byte(tc.data)); got != tc.want {
			t.Errorf("%s: KindOf = %q, want %q", tc.name, got, tc.want)
		}
	}
	for in, want := range map[string]keys.Kind{"file": keys.KindFile, "": keys.KindFile, "TPM": keys.KindTPM, " tpm2 ": keys.KindTPM, "pkcs11": keys.KindPKCS11, "hsm": keys.KindPKCS11} {
		if got, err := keys.ParseKind(in); err != nil || got != want {
			t.Errorf("ParseKind(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := keys.ParseKind("smartcard"); !errors.Is(err, keys.ErrUnsupported) {
		t.Errorf("ParseKind(smartcard) = %v", err)
	}
}

func TestBackendsRouting(t *testing.T) {
	tpmKey, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := Open(Config{Address: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	router := keys.Backends{File: keys.FileBackend{}, TPM: tb}
	software, signer, err := router.CreateKey(keys.KindFile, keys.P256)
	if err != nil {
		t.Fatal(err)
	}
	if pub, err := router.PublicKey(software); err != nil || !keys.PublicKeysEqual(pub, signer.Public()) {
		t.Fatalf("software key through the router: %v", err)
	}
	pub, err := router.PublicKey(tpmKey)
	if err != nil {
		t.Fatalf("TPM key through the router: %v", err)
	}
	if !keys.PublicKeysEqual(pub, readPublicPEM(t, "testdata/openssl-p256.pub.pem")) {
		t.Fatal("router gave the wrong TPM public key")
	}
	if _, err := router.Signer(tpmKey); err != nil {
		t.Fatalf("TPM signer through the router: %v", err)
	}
	if _, _, err := router.CreateKey(keys.KindTPM, keys.P256); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CreateKey on an unreachable TPM: %v", err)
	}

	uriFile := []byte("pkcs11:token=evsesec;object=secc\n")
	if _, err := router.PublicKey(uriFile); !errors.Is(err, keys.ErrUnsupported) {
		t.Fatalf("pkcs11 key without a pkcs11 backend: %v, want ErrUnsupported", err)
	}
	if _, _, err := router.CreateKey(keys.KindPKCS11, keys.P256); !errors.Is(err, keys.ErrUnsupported) {
		t.Fatalf("CreateKey without a pkcs11 backend: %v", err)
	}
	if _, err := router.For("smartcard"); !errors.Is(err, keys.ErrUnsupported) {
		t.Fatalf("For(unknown kind): %v", err)
	}
	// Deleting: nothing to do for keys held in the file, an error when a token key cannot be
	// reached (so the caller keeps the file).
	if err := router.DeleteKey(software); err != nil {
		t.Fatalf("DeleteKey(software): %v", err)
	}
	if err := router.DeleteKey(tpmKey); err != nil {
		t.Fatalf("DeleteKey(tpm): %v", err)
	}
	if err := (keys.Backends{}).DeleteKey(tpmKey); err != nil {
		t.Fatalf("DeleteKey(tpm) without a TPM backend: %v", err)
	}
	if err := router.DeleteKey(uriFile); !errors.Is(err, keys.ErrUnsupported) {
		t.Fatalf("DeleteKey(pkcs11) without a pkcs11 backend: %v", err)
	}
}

func TestBackendsTypedNilAndClose(t *testing.T) {
	var never *Backend // configured off: never opened
	router := keys.Backends{File: keys.FileBackend{}, TPM: never}
	tpmKey, err := os.ReadFile("testdata/openssl-p256.tss2.pem")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := router.PublicKey(tpmKey); !errors.Is(err, keys.ErrUnsupported) {
		t.Fatalf("typed nil TPM backend: %v, want ErrUnsupported", err)
	}
	if err := router.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(Config{Address: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := (keys.Backends{TPM: b}).Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.CreateKey(keys.P256); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Backends.Close: %v, want ErrClosed", err)
	}
}
