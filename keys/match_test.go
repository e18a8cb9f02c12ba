package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestPublicKeysEqual(t *testing.T) {
	p256 := testSigner(t, P256)
	p384 := testSigner(t, P384)
	rsaKey := testSigner(t, RSA2048)
	// A copy with the same values but different pointers must still be equal.
	ecCopy := *p256.Public().(*ecdsa.PublicKey)
	rsaCopy := *rsaKey.Public().(*rsa.PublicKey)
	tests := []struct {
		name string
		a, b crypto.PublicKey
		want bool
	}{
		{"same EC key", p256.Public(), p256.Public(), true},
		{"EC key and its copy", p256.Public(), &ecCopy, true},
		{"same RSA key", rsaKey.Public(), &rsaCopy, true},
		{"different curves", p256.Public(), p384.Public(), false},
		{"EC and RSA", p256.Public(), rsaKey.Public(), false},
		{"RSA and EC", rsaKey.Public(), p256.Public(), false},
		{"private key is not a public key", p256, p256.Public(), false},
		{"nil first", nil, p256.Public(), false},
		{"nil second", p256.Public(), nil, false},
		{"both nil", nil, nil, false},
		{"type without Equal", "a string", "a string", false},
	}
	for _, tt := range tests {
		if got := PublicKeysEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: PublicKeysEqual = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMatches(t *testing.T) {
	key := testSigner(t, P256)
	other := testSigner(t, P384)
	cert := certFromPEM(t, selfSignedPEM(t, key))
	tests := []struct {
		name string
		pub  crypto.PublicKey
		want bool
	}{
		{"own key", key.Public(), true},
		{"other key", other.Public(), false},
		{"nil key", nil, false},
	}
	for _, tt := range tests {
		if got := Matches(cert, tt.pub); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Matches(nil, key.Public()) {
		t.Error("Matches(nil cert) = true")
	}
}

// TestSubjectKeyIDFixture: OpenSSL wrote the reference fixture's Subject Key Identifier with the
// default method, so ours must equal it.
func TestSubjectKeyIDFixture(t *testing.T) {
	cert := readCert(t, filepath.Join("testdata", "SECC_LEAF_EXPIRED.pem"))
	if len(cert.SubjectKeyId) == 0 {
		t.Fatal("fixture has no Subject Key Identifier")
	}
	got, err := SubjectKeyID(cert.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, cert.SubjectKeyId) {
		t.Errorf("SubjectKeyID %x, certificate says %x", got, cert.SubjectKeyId)
	}
}

// TestSubjectKeyIDOpenSSL compares with the identifier `openssl req -x509` puts into a
// certificate by default, for an EC and an RSA key.
func TestSubjectKeyIDOpenSSL(t *testing.T) {
	requireTool(t, "openssl")
	dir := t.TempDir()
	skidLine := regexp.MustCompile(`(?m)^\s+([0-9A-F]{2}(?::[0-9A-F]{2})+)\s*$`)
	for _, alg := range []Algorithm{P256, RSA2048} {
		t.Run(string(alg), func(t *testing.T) {
			key := testSigner(t, alg)
			data, err := MarshalPEM(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(dir, string(alg)+".key")
			certFile := filepath.Join(dir, string(alg)+".pem")
			if err := os.WriteFile(keyFile, data, 0o600); err != nil {
				t.Fatal(err)
			}
			openssl(t, dir, "req", "-x509", "-new", "-key", keyFile, "-subj", "/CN=skid test", "-days", "1", "-out", certFile)
			out := openssl(t, dir, "x509", "-in", certFile, "-noout", "-ext", "subjectKeyIdentifier")
			m := skidLine.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no Subject Key Identifier in OpenSSL's output %q", out)
			}
			want, err := hex.DecodeString(strings.ReplaceAll(string(m[1]), ":", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := SubjectKeyID(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SubjectKeyID %X, OpenSSL %X", got, want)
			}
			if cert := readCert(t, certFile); !Matches(cert, key.Public()) {
				t.Error("OpenSSL's certificate does not match its key")
			}
		})
	}
}

func TestSubjectKeyIDAndFingerprintUnsupported(t *testing.T) {
	for _, pub := range []crypto.PublicKey{nil, "not a key", &ecdsa.PublicKey{}} {
		if id, err := SubjectKeyID(pub); !errors.Is(err, ErrUnsupported) || id != nil {
			t.Errorf("SubjectKeyID(%T) = %x, %v; want ErrUnsupported", pub, id, err)
		}
		if fp := Fingerprint(pub); fp != "" {
			t.Errorf("Fingerprint(%T) = %q, want empty", pub, fp)
		}
	}
}

func TestFingerprint(t *testing.T) {
	seen := map[string]Algorithm{}
	for _, alg := range Algorithms() {
		fp := Fingerprint(testSigner(t, alg).Public())
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) {
			t.Errorf("%s: fingerprint %q is not 64 lowercase hex digits", alg, fp)
		}
		if prev, dup := seen[fp]; dup {
			t.Errorf("%s and %s have the same fingerprint", alg, prev)
		}
		seen[fp] = alg
	}
}
