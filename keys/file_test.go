package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPassword is distinctive so that a test can search error messages for it.
const testPassword = "Tr0ub4dor&3-keys-test"

// checkSigns proves that a decoded key still has its private half: it signs with signer and
// verifies with the public key of the original.
func checkSigns(t *testing.T, signer crypto.Signer, want crypto.PublicKey) {
	t.Helper()
	digest := sha256.Sum256([]byte("evsesec keys test"))
	switch pub := want.(type) {
	case *ecdsa.PublicKey:
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig) {
			t.Fatalf("decoded ECDSA key does not sign for the original public key (err %v)", err)
		}
	case *rsa.PublicKey:
		sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil || rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) != nil {
			t.Fatalf("decoded RSA key does not sign for the original public key (err %v)", err)
		}
	case ed25519.PublicKey:
		msg := []byte("evsesec keys test")
		sig, err := signer.Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil || !ed25519.Verify(pub, msg, sig) {
			t.Fatalf("decoded Ed25519 key does not sign for the original public key (err %v)", err)
		}
	default:
		t.Fatalf("unexpected public key type %T", want)
	}
}

// mustPEM decodes the single PEM block of data.
func mustPEM(t *testing.T, data []byte) *pem.Block {
	t.Helper()
	block, rest := pem.Decode(data)
	if block == nil || len(bytes.TrimSpace(rest)) > 0 {
		t.Fatalf("want exactly one PEM block, got %v and %d bytes more", block != nil, len(rest))
	}
	return block
}

func TestMarshalParseRoundTrip(t *testing.T) {
	passwords := []struct {
		name     string
		password []byte
		wantType string
	}{
		{"nil password", nil, "PRIVATE KEY"},
		{"empty password", []byte{}, "PRIVATE KEY"},
		{"password", []byte(testPassword), "ENCRYPTED PRIVATE KEY"},
	}
	for _, alg := range Algorithms() {
		key := testSigner(t, alg)
		for _, pw := range passwords {
			t.Run(string(alg)+"/"+pw.name, func(t *testing.T) {
				data, err := MarshalPEM(key, pw.password)
				if err != nil {
					t.Fatalf("MarshalPEM: %v", err)
				}
				block := mustPEM(t, data)
				if block.Type != pw.wantType {
					t.Fatalf("block type %q, want exactly %q", block.Type, pw.wantType)
				}
				if len(block.Headers) != 0 {
					t.Errorf("unexpected PEM headers %v", block.Headers)
				}
				got, err := ParsePEM(data, pw.password)
				if err != nil {
					t.Fatalf("ParsePEM: %v", err)
				}
				if !PublicKeysEqual(got.Public(), key.Public()) {
					t.Fatal("decoded key has a different public key")
				}
				checkSigns(t, got, key.Public())

				if len(pw.password) == 0 {
					// A plain key loads whatever password is configured.
					if _, err := ParsePEM(data, []byte("unused password")); err != nil {
						t.Errorf("plain key with a password configured: %v", err)
					}
					return
				}
				scheme, err := checkPBES2(block.Bytes)
				if err != nil || scheme != "PBES2 PBKDF2-HMAC-SHA256 AES-256-CBC" {
					t.Errorf("written scheme %q, %v", scheme, err)
				}
				for _, none := range [][]byte{nil, {}} {
					if _, err := ParsePEM(data, none); !errors.Is(err, ErrPasswordRequired) {
						t.Errorf("no password: %v, want ErrPasswordRequired", err)
					}
				}
				if _, err := ParsePEM(data, []byte("wrong")); !errors.Is(err, ErrWrongPassword) {
					t.Errorf("wrong password: %v, want ErrWrongPassword", err)
				}
			})
		}
	}
}

func TestMarshalPEMEd25519(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range [][]byte{nil, []byte(testPassword)} {
		data, err := MarshalPEM(key, pw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePEM(data, pw)
		if err != nil || !PublicKeysEqual(got.Public(), key.Public()) {
			t.Fatalf("Ed25519 round trip: %v", err)
		}
		checkSigns(t, got, key.Public())
	}
}

// opaqueSigner stands for a hardware key: it signs but its private half is not in memory.
type opaqueSigner struct{ crypto.Signer }

func TestMarshalPEMUnsupported(t *testing.T) {
	key := testSigner(t, P256)
	for _, s := range []crypto.Signer{opaqueSigner{key}, nil} {
		if data, err := MarshalPEM(s, nil); !errors.Is(err, ErrUnsupported) || data != nil {
			t.Errorf("MarshalPEM(%T) = %d bytes, %v; want ErrUnsupported", s, len(data), err)
		}
	}
}

// legacyPEM encrypts a traditional key the way `openssl ec -aes128` and `openssl rsa -aes256 -traditional` do.
func legacyPEM(t *testing.T, blockType string, der []byte, cipher x509.PEMCipher, password string) []byte {
	t.Helper()
	// The legacy format is deprecated for writing; the tests need it to check that we still read it.
	block, err := x509.EncryptPEMBlock(rand.Reader, blockType, der, []byte(password), cipher) //nolint:staticcheck // SA1019: test input in the legacy format.
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}

func TestParsePEMLegacyEncryption(t *testing.T) {
	ec := testSigner(t, P256).(*ecdsa.PrivateKey)
	rsaKey := testSigner(t, RSA2048).(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	tests := []struct {
		name      string
		blockType string
		der       []byte
		cipher    x509.PEMCipher
		want      crypto.PublicKey
	}{
		{"SEC1 AES-128", "EC PRIVATE KEY", sec1, x509.PEMCipherAES128, ec.Public()},
		{"SEC1 AES-256", "EC PRIVATE KEY", sec1, x509.PEMCipherAES256, ec.Public()},
		{"SEC1 3DES", "EC PRIVATE KEY", sec1, x509.PEMCipher3DES, ec.Public()},
		{"SEC1 DES", "EC PRIVATE KEY", sec1, x509.PEMCipherDES, ec.Public()},
		{"PKCS1 AES-256", "RSA PRIVATE KEY", pkcs1, x509.PEMCipherAES256, rsaKey.Public()},
		{"PKCS1 AES-192", "RSA PRIVATE KEY", pkcs1, x509.PEMCipherAES192, rsaKey.Public()},
		{"PKCS8 AES-128", "PRIVATE KEY", p8, x509.PEMCipherAES128, ec.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := legacyPEM(t, tt.blockType, tt.der, tt.cipher, testPassword)
			got, err := ParsePEM(data, []byte(testPassword))
			if err != nil {
				t.Fatalf("ParsePEM: %v", err)
			}
			if !PublicKeysEqual(got.Public(), tt.want) {
				t.Fatal("wrong public key")
			}
			checkSigns(t, got, tt.want)
			if _, err := ParsePEM(data, nil); !errors.Is(err, ErrPasswordRequired) {
				t.Errorf("no password: %v, want ErrPasswordRequired", err)
			}
			// Several wrong passwords, so that the one-in-256 case where the padding check passes
			// is likely to be met at least once across the table.
			for _, wrong := range []string{"wrong", "123456", testPassword + "x", "x"} {
				if _, err := ParsePEM(data, []byte(wrong)); !errors.Is(err, ErrWrongPassword) {
					t.Errorf("wrong password: %v, want ErrWrongPassword", err)
				}
			}
		})
	}
}

func TestParsePEMLegacyHeaders(t *testing.T) {
	ec := testSigner(t, P256).(*ecdsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	good := mustPEM(t, legacyPEM(t, "EC PRIVATE KEY", sec1, x509.PEMCipherAES128, testPassword))
	tests := []struct {
		name    string
		headers map[string]string
		want    error
	}{
		{"unknown cipher", map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "CAMELLIA-256-CBC,00112233445566778899AABBCCDDEEFF"}, ErrUnsupported},
		{"Proc-Type without DEK-Info", map[string]string{"Proc-Type": "4,ENCRYPTED"}, ErrMalformed},
		{"DEK-Info without IV", map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC"}, ErrMalformed},
		{"short IV", map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,0011"}, ErrMalformed},
		{"IV not hex", map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,zz"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := pem.EncodeToMemory(&pem.Block{Type: good.Type, Headers: tt.headers, Bytes: good.Bytes})
			if _, err := ParsePEM(data, []byte(testPassword)); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Ciphertext that is not a whole number of blocks.
	data := pem.EncodeToMemory(&pem.Block{Type: good.Type, Headers: good.Headers, Bytes: good.Bytes[:len(good.Bytes)-3]})
	if _, err := ParsePEM(data, []byte(testPassword)); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated ciphertext: %v, want ErrMalformed", err)
	}
}

// TestParsePEMFileShapes covers what else may share a key file with the key.
func TestParsePEMFileShapes(t *testing.T) {
	key := testSigner(t, P256)
	other := testSigner(t, P384)
	keyPEM, err := MarshalPEM(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPEM, err := MarshalPEM(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := selfSignedPEM(t, key)
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	crlf := bytes.ReplaceAll(keyPEM, []byte("\n"), []byte("\r\n"))
	tests := []struct {
		name string
		data []byte
		want crypto.PublicKey
	}{
		{"key only", keyPEM, key.Public()},
		{"certificate then key", cat(certPEM, keyPEM), key.Public()},
		{"key then certificate", cat(keyPEM, certPEM), key.Public()},
		{"EC parameters then key", cat(params, keyPEM), key.Public()},
		{"text around the blocks", cat([]byte("Bag Attributes\n    localKeyID: 01\n"), keyPEM, []byte("trailing words\n")), key.Public()},
		{"CRLF line endings", crlf, key.Public()},
		{"first of two keys", cat(otherPEM, keyPEM), other.Public()},
		{"unsupported key before a supported one", cat(pem.EncodeToMemory(&pem.Block{Type: "TSS2 PRIVATE KEY", Bytes: []byte{1}}), keyPEM), key.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePEM(tt.data, nil)
			if err != nil {
				t.Fatalf("ParsePEM: %v", err)
			}
			if !PublicKeysEqual(got.Public(), tt.want) {
				t.Fatal("wrong key")
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// selfSignedPEM makes a throwaway certificate for key.
func selfSignedPEM(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "keys test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParseDER(t *testing.T) {
	ec := testSigner(t, P256).(*ecdsa.PrivateKey)
	rsaKey := testSigner(t, RSA2048).(*rsa.PrivateKey)
	p8, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := MarshalPEM(ec, []byte(testPassword))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
		want crypto.PublicKey
	}{
		{"PKCS#8", p8, ec.Public()},
		{"encrypted PKCS#8", mustPEM(t, enc).Bytes, ec.Public()},
		{"SEC1", sec1, ec.Public()},
		{"PKCS#1", x509.MarshalPKCS1PrivateKey(rsaKey), rsaKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePEM(tt.der, []byte(testPassword))
			if err != nil {
				t.Fatalf("ParsePEM: %v", err)
			}
			if !PublicKeysEqual(got.Public(), tt.want) {
				t.Fatal("wrong key")
			}
		})
	}
	if _, err := ParsePEM(mustPEM(t, enc).Bytes, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("encrypted DER without password: %v", err)
	}
}

// TestParsePEMReferenceFixture loads a key of the reference's own test PKI (legacy encrypted SEC1,
// password 123456) and matches it to its certificate.
func TestParsePEMReferenceFixture(t *testing.T) {
	keyPEM, err := os.ReadFile(filepath.Join("testdata", "SECC_LEAF_EXPIRED.key"))
	if err != nil {
		t.Fatal(err)
	}
	cert := readCert(t, filepath.Join("testdata", "SECC_LEAF_EXPIRED.pem"))
	block := mustPEM(t, keyPEM)
	if block.Type != "EC PRIVATE KEY" || block.Headers["Proc-Type"] != "4,ENCRYPTED" {
		t.Fatalf("fixture is not the legacy encrypted format: %q %v", block.Type, block.Headers)
	}
	signer, err := ParsePEM(keyPEM, []byte("123456"))
	if err != nil {
		t.Fatalf("ParsePEM: %v", err)
	}
	if !Matches(cert, signer.Public()) {
		t.Fatal("fixture key does not match its certificate")
	}
	checkSigns(t, signer, cert.PublicKey)
	if _, err := ParsePEM(keyPEM, nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("no password: %v", err)
	}
	if _, err := ParsePEM(keyPEM, []byte("654321")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	pub, err := FileBackend{Password: []byte("123456")}.PublicKey(keyPEM)
	if err != nil || !Matches(cert, pub) {
		t.Errorf("FileBackend.PublicKey: %v", err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return certFromPEM(t, data)
}

func certFromPEM(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatal("no certificate PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestFileBackend(t *testing.T) {
	for _, pw := range []string{"", testPassword} {
		b := FileBackend{Password: []byte(pw)}
		keyFile, signer, err := b.CreateKey(P256)
		if err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		wantType := "PRIVATE KEY"
		if pw != "" {
			wantType = "ENCRYPTED PRIVATE KEY"
		}
		if got := mustPEM(t, keyFile).Type; got != wantType {
			t.Errorf("password %q: key file type %q, want %q", pw, got, wantType)
		}
		opened, err := b.Signer(keyFile)
		if err != nil || !PublicKeysEqual(opened.Public(), signer.Public()) {
			t.Fatalf("Signer: %v", err)
		}
		checkSigns(t, opened, signer.Public())
		pub, err := b.PublicKey(keyFile)
		if err != nil || !PublicKeysEqual(pub, signer.Public()) {
			t.Fatalf("PublicKey: %v", err)
		}
		if pw != "" {
			if _, err := (FileBackend{}).Signer(keyFile); !errors.Is(err, ErrPasswordRequired) {
				t.Errorf("backend without password: %v", err)
			}
			if _, err := (FileBackend{}).PublicKey(keyFile); !errors.Is(err, ErrPasswordRequired) {
				t.Errorf("backend without password, PublicKey: %v", err)
			}
		}
	}
	if _, _, err := (FileBackend{}).CreateKey("DSA-1024"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CreateKey of an unknown algorithm: %v", err)
	}
}

// FuzzParsePEM feeds arbitrary bytes and passwords to ParsePEM. It must never panic, and every
// failure must wrap one of the package's sentinels.
func FuzzParsePEM(f *testing.F) {
	ec := testSigner(f, P256).(*ecdsa.PrivateKey)
	rsaKey := testSigner(f, RSA2048).(*rsa.PrivateKey)
	sec1, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	plain, err := MarshalPEM(ec, nil)
	if err != nil {
		f.Fatal(err)
	}
	encrypted, err := MarshalPEM(ec, []byte(testPassword))
	if err != nil {
		f.Fatal(err)
	}
	// x509.EncryptPEMBlock is deprecated for writing; here it only makes seed input.
	legacy, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", sec1, []byte(testPassword), x509.PEMCipherAES128) //nolint:staticcheck // SA1019: seed in the legacy format.
	if err != nil {
		f.Fatal(err)
	}
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	fixture, err := os.ReadFile(filepath.Join("testdata", "SECC_LEAF_EXPIRED.key"))
	if err != nil {
		f.Fatal(err)
	}
	encBlock, _ := pem.Decode(encrypted)
	plainBlock, _ := pem.Decode(plain)
	seeds := [][]byte{
		plain,
		encrypted,
		pem.EncodeToMemory(legacy),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}),
		fixture,
		encBlock.Bytes,
		plainBlock.Bytes,
		sec1,
		pkcs1,
		[]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"),
		[]byte("garbage"),
		nil,
	}
	for _, s := range seeds {
		f.Add(s, []byte(testPassword))
		f.Add(s, []byte(nil))
	}
	f.Add(fixture, []byte("123456"))
	f.Fuzz(func(t *testing.T, data, password []byte) {
		signer, err := ParsePEM(data, password)
		if err != nil {
			if signer != nil {
				t.Fatal("signer returned together with an error")
			}
			if sentinelOf(err) == nil {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if signer == nil || signer.Public() == nil {
			t.Fatal("no error but no usable signer")
		}
	})
}
