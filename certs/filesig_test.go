package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/testpki"
)

// fwRSA is the one RSA-2048 key of this test binary (key generation is slow).
var fwRSA = sync.OnceValues(func() (crypto.Signer, error) { return testpki.GenerateKey(testpki.KeyRSA2048) })

func fwRSAKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := fwRSA()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fwCert makes a self-signed certificate for key.
func fwCert(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	c, err := testpki.SelfSigned(testpki.Spec{CommonName: "firmware signer", Key: key, KeyUsage: x509.KeyUsageDigitalSignature})
	if err != nil {
		t.Fatal(err)
	}
	return c.Cert
}

func fwWrite(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFileSHA256 compares the streamed digest with the one-shot digest around the read buffer's
// size, where an off-by-one in a read loop would show.
func TestFileSHA256(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, hashBufferSize - 1, hashBufferSize, hashBufferSize + 1, 3*hashBufferSize + 17} {
		data := make([]byte, n)
		rand.Read(data)
		p := fwWrite(t, dir, "f.bin", data)
		got, err := FileSHA256(p)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if want := sha256.Sum256(data); string(got) != string(want[:]) {
			t.Fatalf("n=%d: digest %x, want %x", n, got, want)
		}
	}
}

// TestFileSHA256NotRegular: only regular files (also through a symlink) are hashed; everything
// else is an error, and a FIFO without a writer does not block the caller (the reference would
// hang in fopen).
func TestFileSHA256NotRegular(t *testing.T) {
	dir := t.TempDir()
	regular := fwWrite(t, dir, "fw.bin", []byte("firmware"))
	link := filepath.Join(dir, "link.bin")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	if _, err := FileSHA256(link); err != nil {
		t.Fatalf("symlink to a regular file: %v", err)
	}
	dirLink := filepath.Join(dir, "dirlink")
	if err := os.Symlink(dir, dirLink); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	cases := map[string]string{
		"directory":            dir,
		"symlink to directory": dirLink,
		"missing":              filepath.Join(dir, "missing.bin"),
		"empty path":           "",
		"FIFO":                 fifo,
		"socket":               sock,
		"dangling symlink":     filepath.Join(dir, "dangling"),
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), cases["dangling symlink"]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		cases["character device"] = "/dev/null"
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := FileSHA256(p)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatalf("FileSHA256(%q) succeeded", p)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("FileSHA256(%q) blocks", p)
			}
		})
	}
}

// TestVerifyDigestSignature covers every accepted scheme with Go-made signatures, and the ways a
// signature can be wrong.
func TestVerifyDigestSignature(t *testing.T) {
	digest := sha256.Sum256([]byte("firmware image"))
	other := sha256.Sum256([]byte("another image"))
	rsaKey := fwRSAKey(t).(*rsa.PrivateKey)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	sign := func(f func() ([]byte, error)) []byte {
		t.Helper()
		s, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	type tc struct {
		name string
		key  crypto.Signer
		sig  []byte
	}
	good := []tc{
		{"RSA PKCS#1 v1.5", rsaKey, sign(func() ([]byte, error) { return rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, digest[:]) })},
		{"RSA-PSS salt = hash", rsaKey, sign(func() ([]byte, error) {
			return rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		})},
		{"RSA-PSS maximal salt", rsaKey, sign(func() ([]byte, error) {
			return rsa.SignPSS(rand.Reader, rsaKey, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		})},
		{"ECDSA P-256", p256, sign(func() ([]byte, error) { return ecdsa.SignASN1(rand.Reader, p256, digest[:]) })},
		{"ECDSA P-384 over SHA-256", p384, sign(func() ([]byte, error) { return ecdsa.SignASN1(rand.Reader, p384, digest[:]) })},
	}
	for _, g := range good {
		t.Run(g.name, func(t *testing.T) {
			cert := fwCert(t, g.key)
			if err := VerifyDigestSignature(cert, digest[:], g.sig); err != nil {
				t.Fatalf("good signature rejected: %v", err)
			}
			if err := VerifyDigestSignature(cert, other[:], g.sig); !errors.Is(err, ErrSignature) {
				t.Fatalf("signature over another digest: %v, want ErrSignature", err)
			}
			flipped := append([]byte{}, g.sig...)
			flipped[len(flipped)/2] ^= 0x01
			if err := VerifyDigestSignature(cert, digest[:], flipped); !errors.Is(err, ErrSignature) {
				t.Fatalf("flipped signature byte: %v, want ErrSignature", err)
			}
			if err := VerifyDigestSignature(cert, digest[:], g.sig[:len(g.sig)-1]); err == nil {
				t.Fatal("truncated signature accepted")
			}
			if err := VerifyDigestSignature(cert, digest[:16], g.sig); err == nil {
				t.Fatal("short digest accepted")
			}
			if err := VerifyDigestSignature(cert, digest[:], nil); !errors.Is(err, ErrSignature) {
				t.Fatalf("empty signature: %v, want ErrSignature", err)
			}
		})
	}

	t.Run("signature of another key", func(t *testing.T) {
		k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sig, _ := ecdsa.SignASN1(rand.Reader, k2, digest[:])
		if err := VerifyDigestSignature(fwCert(t, p256), digest[:], sig); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("ECDSA signature against an RSA certificate", func(t *testing.T) {
		sig, _ := ecdsa.SignASN1(rand.Reader, p256, digest[:])
		if err := VerifyDigestSignature(fwCert(t, rsaKey), digest[:], sig); !errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("Ed25519 is not supported", func(t *testing.T) {
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		sig := ed25519.Sign(ed, digest[:])
		err := VerifyDigestSignature(fwCert(t, ed), digest[:], sig)
		if err == nil || errors.Is(err, ErrSignature) {
			t.Fatalf("got %v, want an unsupported-key error", err)
		}
	})
	t.Run("no certificate", func(t *testing.T) {
		if err := VerifyDigestSignature(nil, digest[:], []byte{1}); err == nil {
			t.Fatal("nil certificate accepted")
		}
	})
}

// TestVerifyFileSignatureOpenSSL is the differential test: files signed with `openssl dgst
// -sha256 -sign` (EC, RSA PKCS#1 v1.5, RSA-PSS with OpenSSL's default and explicit salt lengths)
// verify with FileSHA256 + VerifyDigestSignature, and a flipped byte in the file or in the
// signature fails.
func TestVerifyFileSignatureOpenSSL(t *testing.T) {
	bin := testtool.Require(t, "openssl")
	dir := t.TempDir()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := map[string]crypto.Signer{"ec": p256, "rsa": fwRSAKey(t)}
	keyFile := map[string]string{}
	for name, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		keyFile[name] = fwWrite(t, dir, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	data := make([]byte, 3*hashBufferSize+5)
	rand.Read(data)
	file := fwWrite(t, dir, "firmware.bin", data)

	cases := []struct {
		name, key string
		opts      []string
	}{
		{"ECDSA P-256", "ec", nil},
		{"RSA PKCS#1 v1.5", "rsa", nil},
		{"RSA-PSS default salt", "rsa", []string{"-sigopt", "rsa_padding_mode:pss"}},
		{"RSA-PSS salt = digest", "rsa", []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"}},
		{"RSA-PSS maximal salt", "rsa", []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:max"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigFile := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".sig")
			args := append([]string{"dgst", "-sha256", "-sign", keyFile[tc.key]}, tc.opts...)
			args = append(args, "-out", sigFile, file)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v\n%s", args, err, out)
			}
			sig, err := os.ReadFile(sigFile)
			if err != nil {
				t.Fatal(err)
			}
			cert := fwCert(t, keys[tc.key])
			digest, err := FileSHA256(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyDigestSignature(cert, digest, sig); err != nil {
				t.Fatalf("openssl signature rejected: %v", err)
			}
			bad := append([]byte{}, sig...)
			bad[len(bad)-3] ^= 0x80
			if err := VerifyDigestSignature(cert, digest, bad); !errors.Is(err, ErrSignature) {
				t.Fatalf("flipped signature byte: %v, want ErrSignature", err)
			}
			changed := append([]byte{}, data...)
			changed[len(changed)/2] ^= 0x01
			d2 := sha256.Sum256(changed)
			if err := VerifyDigestSignature(cert, d2[:], sig); !errors.Is(err, ErrSignature) {
				t.Fatalf("flipped file byte: %v, want ErrSignature", err)
			}
		})
	}
}
