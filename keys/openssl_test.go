package keys

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The OpenSSL CLI is the oracle for key files: EvseV2G, libocpp and mosquitto all read keys with
// OpenSSL, and deployed chargers hold keys OpenSSL wrote.

// openssl runs the OpenSSL CLI in dir and returns its standard output. Standard input is empty,
// so a key that unexpectedly needs a password fails instead of prompting. On failure only
// OpenSSL's diagnostics are shown, which never include key material.
func openssl(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, err := tryOpenSSL(dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v", args[0], err)
	}
	return out
}

func tryOpenSSL(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.New(err.Error() + ": " + firstLine(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// opensslPublicKey asks OpenSSL for the public key of a key file.
func opensslPublicKey(t *testing.T, dir, file, password string, der bool) []byte {
	t.Helper()
	args := []string{"pkey", "-in", file, "-pubout", "-outform", "DER"}
	if der {
		args = append(args, "-inform", "DER")
	}
	if password != "" {
		args = append(args, "-passin", "pass:"+password)
	}
	return openssl(t, dir, args...)
}

// TestOpenSSLReadsOurKeys: every key we write loads in `openssl pkey`, with the password when it
// is encrypted and without one (no prompt) when it is not, and OpenSSL sees the same public key.
func TestOpenSSLReadsOurKeys(t *testing.T) {
	requireTool(t, "openssl")
	dir := t.TempDir()
	for _, alg := range Algorithms() {
		key := testSigner(t, alg)
		for _, pw := range []string{"", testPassword} {
			name := string(alg) + "/plain"
			if pw != "" {
				name = string(alg) + "/encrypted"
			}
			t.Run(name, func(t *testing.T) {
				data, err := MarshalPEM(key, []byte(pw))
				if err != nil {
					t.Fatal(err)
				}
				file := filepath.Join(dir, string(alg)+"-"+map[bool]string{true: "enc", false: "plain"}[pw != ""]+".key")
				if err := os.WriteFile(file, data, 0o600); err != nil {
					t.Fatal(err)
				}
				check := []string{"pkey", "-in", file, "-noout"}
				if pw != "" {
					check = append(check, "-passin", "pass:"+pw)
				}
				openssl(t, dir, check...)

				der := opensslPublicKey(t, dir, file, pw, false)
				pub, err := x509.ParsePKIXPublicKey(der)
				if err != nil {
					t.Fatal(err)
				}
				if !PublicKeysEqual(pub, key.Public()) {
					t.Fatal("OpenSSL reads a different public key")
				}
				sum := sha256.Sum256(der)
				if got := Fingerprint(key.Public()); got != hex.EncodeToString(sum[:]) {
					t.Errorf("Fingerprint %s differs from SHA-256 of OpenSSL's SubjectPublicKeyInfo", got)
				}

				if pw == "" {
					return
				}
				if _, err := tryOpenSSL(dir, "pkey", "-in", file, "-noout", "-passin", "pass:not-"+pw); err == nil {
					t.Error("OpenSSL opened our encrypted key with a wrong password")
				}
				if _, err := tryOpenSSL(dir, "pkey", "-in", file, "-noout"); err == nil {
					t.Error("OpenSSL opened our encrypted key without a password")
				}
			})
		}
	}
}

// TestOpenSSLKeysLoad: keys in every format OpenSSL writes (and the reference's fixtures use)
// load in ours with the public key OpenSSL reports; formats we do not handle fail with
// ErrUnsupported.
func TestOpenSSLKeysLoad(t *testing.T) {
	requireTool(t, "openssl")
	dir := t.TempDir()
	const pw = testPassword
	// Base keys that several cases convert. One RSA key only: generation is slow.
	openssl(t, dir, "ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "sec1.pem")
	openssl(t, dir, "genrsa", "-traditional", "-out", "rsa.pem", "2048")

	tests := []struct {
		name      string
		cmd       []string // writes file; nil when file is a base key
		file      string
		password  string
		der       bool
		blockType string // the PEM type OpenSSL wrote, to be sure the case tests what it says
		want      error
	}{
		{"SEC1 (ecparam -genkey -noout)", nil, "sec1.pem", "", false, "EC PRIVATE KEY", nil},
		{"SEC1 after EC PARAMETERS (ecparam -genkey)",
			[]string{"ecparam", "-genkey", "-name", "secp384r1", "-out", "params-sec1.pem"}, "params-sec1.pem", "", false, "EC PARAMETERS", nil},
		{"legacy encrypted SEC1 (ec -aes-128-cbc)",
			[]string{"ec", "-in", "sec1.pem", "-aes-128-cbc", "-passout", "pass:123456", "-out", "sec1-enc.pem"}, "sec1-enc.pem", "123456", false, "EC PRIVATE KEY", nil},
		{"PKCS#1 (genrsa -traditional)", nil, "rsa.pem", "", false, "RSA PRIVATE KEY", nil},
		{"legacy encrypted PKCS#1 (rsa -aes256 -traditional)",
			[]string{"rsa", "-in", "rsa.pem", "-aes256", "-traditional", "-passout", "pass:" + pw, "-out", "rsa-enc.pem"}, "rsa-enc.pem", pw, false, "RSA PRIVATE KEY", nil},
		{"PKCS#8 P-384 (genpkey)",
			[]string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p384.pem"}, "p384.pem", "", false, "PRIVATE KEY", nil},
		{"PKCS#8 RSA (pkey)",
			[]string{"pkey", "-in", "rsa.pem", "-out", "rsa-p8.pem"}, "rsa-p8.pem", "", false, "PRIVATE KEY", nil},
		{"PKCS#8 Ed25519 (genpkey)",
			[]string{"genpkey", "-algorithm", "ED25519", "-out", "ed25519.pem"}, "ed25519.pem", "", false, "PRIVATE KEY", nil},
		{"encrypted PKCS#8 (genpkey -aes-256-cbc)",
			[]string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-256-cbc", "-pass", "pass:" + pw, "-out", "genpkey-enc.pem"},
			"genpkey-enc.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"encrypted PKCS#8 (pkcs8 -topk8 -v2 aes-128-cbc)",
			[]string{"pkcs8", "-topk8", "-v2", "aes-128-cbc", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "p8-aes128.pem"},
			"p8-aes128.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"encrypted PKCS#8 RSA (pkcs8 -topk8 -v2 aes-256-cbc)",
			[]string{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "rsa.pem", "-passout", "pass:" + pw, "-out", "rsa-p8-enc.pem"},
			"rsa-p8-enc.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"encrypted PKCS#8, HMAC-SHA1 PRF (OpenSSL 1.0 default)",
			[]string{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA1", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "p8-sha1.pem"},
			"p8-sha1.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"encrypted PKCS#8, 3DES",
			[]string{"pkcs8", "-topk8", "-v2", "des3", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "p8-des3.pem"},
			"p8-des3.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"encrypted PKCS#8, scrypt",
			[]string{"pkcs8", "-topk8", "-scrypt", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "p8-scrypt.pem"},
			"p8-scrypt.pem", pw, false, "ENCRYPTED PRIVATE KEY", nil},
		{"DER PKCS#8",
			[]string{"pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem", "-outform", "DER", "-out", "p8.der"}, "p8.der", "", true, "", nil},
		{"DER encrypted PKCS#8",
			[]string{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "sec1.pem", "-outform", "DER", "-passout", "pass:" + pw, "-out", "p8-enc.der"},
			"p8-enc.der", pw, true, "", nil},
		{"DER SEC1",
			[]string{"ec", "-in", "sec1.pem", "-outform", "DER", "-out", "sec1.der"}, "sec1.der", "", true, "", nil},
		{"DER PKCS#1",
			[]string{"rsa", "-in", "rsa.pem", "-traditional", "-outform", "DER", "-out", "rsa.der"}, "rsa.der", "", true, "", nil},

		{"Ed448 is unsupported",
			[]string{"genpkey", "-algorithm", "ED448", "-out", "ed448.pem"}, "ed448.pem", "", false, "PRIVATE KEY", ErrUnsupported},
		{"X25519 is unsupported (cannot sign)",
			[]string{"genpkey", "-algorithm", "X25519", "-out", "x25519.pem"}, "x25519.pem", "", false, "PRIVATE KEY", ErrUnsupported},
		{"brainpool SEC1 is unsupported",
			[]string{"ecparam", "-genkey", "-name", "brainpoolP256r1", "-noout", "-out", "bp.pem"}, "bp.pem", "", false, "EC PRIVATE KEY", ErrUnsupported},
		{"brainpool PKCS#8 is unsupported",
			[]string{"pkey", "-in", "bp.pem", "-out", "bp-p8.pem"}, "bp-p8.pem", "", false, "PRIVATE KEY", ErrUnsupported},
		{"PBES1 / PKCS#12 encryption is unsupported",
			[]string{"pkcs8", "-topk8", "-v1", "PBE-SHA1-3DES", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "pbes1.pem"},
			"pbes1.pem", pw, false, "ENCRYPTED PRIVATE KEY", ErrUnsupported},
		{"HMAC-SHA512 PRF is unsupported",
			[]string{"pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512", "-in", "sec1.pem", "-passout", "pass:" + pw, "-out", "p8-sha512.pem"},
			"p8-sha512.pem", pw, false, "ENCRYPTED PRIVATE KEY", ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cmd != nil {
				openssl(t, dir, tt.cmd...)
			}
			data, err := os.ReadFile(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tt.blockType != "" {
				if block := mustFirstPEM(t, data); block.Type != tt.blockType {
					t.Fatalf("OpenSSL wrote %q, the case expects %q", block.Type, tt.blockType)
				}
			}
			got, err := ParsePEM(data, []byte(tt.password))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("ParsePEM: %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePEM: %v", err)
			}
			pub, err := x509.ParsePKIXPublicKey(opensslPublicKey(t, dir, tt.file, tt.password, tt.der))
			if err != nil {
				t.Fatal(err)
			}
			if !PublicKeysEqual(got.Public(), pub) {
				t.Fatal("our public key differs from OpenSSL's")
			}
			checkSigns(t, got, pub)

			if tt.password == "" {
				// A plain key loads whatever password is configured.
				if _, err := ParsePEM(data, []byte("any")); err != nil {
					t.Errorf("with an unneeded password: %v", err)
				}
				return
			}
			if _, err := ParsePEM(data, nil); !errors.Is(err, ErrPasswordRequired) {
				t.Errorf("no password: %v, want ErrPasswordRequired", err)
			}
			if _, err := ParsePEM(data, []byte("not-"+tt.password)); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("wrong password: %v, want ErrWrongPassword", err)
			}
		})
	}
}

// mustFirstPEM returns the first PEM block of data.
func mustFirstPEM(t *testing.T, data []byte) *pem.Block {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	return block
}
