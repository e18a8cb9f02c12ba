package store_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// fwEnv is a store over the standard test PKI (MF root → firmware signer).
type fwEnv struct {
	t    *testing.T
	root string
	pki  *testpki.PKI
	lay  *testpki.Layout
	log  *testtool.SyncBuffer // the store's log, to check that every false answer says why
	s    *store.Store
	d    *api.Dispatcher
}

func fwNewEnv(t *testing.T, verifySigner bool) *fwEnv {
	t.Helper()
	root := t.TempDir()
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lay, err := p.WriteLayout(root, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig(root)
	cfg.VerifyFirmwareSigner = verifySigner
	e := &fwEnv{t: t, root: root, pki: p, lay: lay, log: &testtool.SyncBuffer{}}
	e.s, err = store.Open(cfg, store.Options{Logger: slog.New(slog.NewTextHandler(e.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.d = api.NewDispatcher(e.s)
	return e
}

// verify runs verify_file_signature through the dispatcher.
func (e *fwEnv) verify(path, certPEM, sigB64 string) bool {
	e.t.Helper()
	args, _ := json.Marshal(map[string]string{"file_path": path, "signing_certificate": certPEM, "signature": sigB64})
	res, err := e.d.Call(context.Background(), "verify_file_signature", args)
	if err != nil {
		e.t.Fatalf("verify_file_signature: %v", err)
	}
	var ok bool
	if err := json.Unmarshal(res, &ok); err != nil {
		e.t.Fatalf("verify_file_signature result %s: %v", res, err)
	}
	return ok
}

// fwRSA is the one RSA-2048 key of these tests (key generation is slow).
var fwRSA = sync.OnceValues(func() (crypto.Signer, error) { return testpki.GenerateKey(testpki.KeyRSA2048) })

// fwSignerSpec is a firmware signing certificate's profile.
func fwSignerSpec(cn string) testpki.Spec {
	return testpki.Spec{CommonName: cn, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
}

func fwIssue(t *testing.T, ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	c, err := ca.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fwWrite(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fwSign signs the SHA-256 of data with the key in Go (ECDSA), for tests not about OpenSSL.
func fwSign(t *testing.T, key crypto.Signer, data []byte) string {
	t.Helper()
	d := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// TestFirmwareVerifyFileSignatureOpenSSL: files signed with `openssl dgst -sha256 -sign` by EC and
// RSA keys (PKCS#1 v1.5 and PSS) verify through the dispatcher, with the signature base64 in one
// line, in OpenSSL's 64-column lines or without padding; a flipped byte in the file or the
// signature, or another signer's certificate, fails with the reason logged.
func TestFirmwareVerifyFileSignatureOpenSSL(t *testing.T) {
	bin := testtool.Require(t, "openssl")
	e := fwNewEnv(t, false)
	dir := t.TempDir()
	rsaKey, err := fwRSA()
	if err != nil {
		t.Fatal(err)
	}
	rsaSpec := fwSignerSpec("RSA firmware signer")
	rsaSpec.Key = rsaKey
	rsaSigner := fwIssue(t, e.pki.MFRoot, rsaSpec)
	rsaKeyPEM, err := rsaSigner.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	signers := map[string]struct{ cert, key string }{
		"ec":  {string(e.pki.FirmwareSigner.CertPEM()), e.lay.FirmwareSignerKey},
		"rsa": {string(rsaSigner.CertPEM()), fwWrite(t, filepath.Join(dir, "rsa.key"), rsaKeyPEM)},
	}
	data := make([]byte, 300<<10+3)
	rand.Read(data)
	file := fwWrite(t, filepath.Join(dir, "firmware.bin"), data)
	flipped := append([]byte{}, data...)
	flipped[len(flipped)-1] ^= 0x01
	flippedFile := fwWrite(t, filepath.Join(dir, "flipped.bin"), flipped)

	cases := []struct {
		name, signer string
		opts         []string
	}{
		{"ECDSA P-256", "ec", nil},
		{"RSA PKCS#1 v1.5", "rsa", nil},
		{"RSA-PSS", "rsa", []string{"-sigopt", "rsa_padding_mode:pss"}},
		{"RSA-PSS salt = digest", "rsa", []string{"-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sigFile := filepath.Join(dir, "sig"+string(rune('0'+i)))
			args := append([]string{"dgst", "-sha256", "-sign", signers[tc.signer].key}, tc.opts...)
			args = append(args, "-out", sigFile, file)
			if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %v: %v\n%s", args, err, out)
			}
			sig, err := os.ReadFile(sigFile)
			if err != nil {
				t.Fatal(err)
			}
			// OpenSSL's own base64 of the signature: 64-column lines.
			lines, err := exec.Command(bin, "base64", "-in", sigFile).Output()
			if err != nil {
				t.Fatal(err)
			}
			cert := signers[tc.signer].cert
			for name, s := range map[string]string{
				"one line":   base64.StdEncoding.EncodeToString(sig),
				"OpenSSL":    string(lines),
				"no padding": base64.RawStdEncoding.EncodeToString(sig),
			} {
				if !e.verify(file, cert, s) {
					t.Fatalf("signature (%s base64) rejected; log:\n%s", name, e.log.Take())
				}
			}
			e.log.Take()

			badSig := append([]byte{}, sig...)
			badSig[len(badSig)/2] ^= 0x10
			other := signers["ec"].cert
			if tc.signer == "ec" {
				other = signers["rsa"].cert
			}
			for name, call := range map[string][3]string{
				"flipped file byte":      {flippedFile, cert, base64.StdEncoding.EncodeToString(sig)},
				"flipped signature byte": {file, cert, base64.StdEncoding.EncodeToString(badSig)},
				"another signer":         {file, other, base64.StdEncoding.EncodeToString(sig)},
			} {
				if e.verify(call[0], call[1], call[2]) {
					t.Fatalf("%s: verified", name)
				}
				if l := e.log.Take(); !strings.Contains(l, "verify_file_signature") || !strings.Contains(l, "signature check failed") {
					t.Fatalf("%s: reason not logged:\n%s", name, l)
				}
			}
		})
	}
}

// TestFirmwareVerifyFileSignatureBadInput: every kind of bad input is false with a logged reason,
// never an error or a hang (a FIFO without a writer would block a plain open).
func TestFirmwareVerifyFileSignatureBadInput(t *testing.T) {
	e := fwNewEnv(t, false)
	dir := t.TempDir()
	data := []byte("firmware image")
	file := fwWrite(t, filepath.Join(dir, "fw.bin"), data)
	cert := string(e.pki.FirmwareSigner.CertPEM())
	sig := fwSign(t, e.pki.FirmwareSigner.Key, data)
	if !e.verify(file, cert, sig) {
		t.Fatalf("good signature rejected:\n%s", e.log.Take())
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
	dirLink := filepath.Join(dir, "dirlink")
	if err := os.Symlink(dir, dirLink); err != nil {
		t.Fatal(err)
	}
	keyPEM, err := e.pki.FirmwareSigner.KeyPEM("")
	if err != nil {
		t.Fatal(err)
	}
	garbageCert := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

	cases := []struct{ name, path, cert, sig string }{
		{"signature not base64", file, cert, "not base64!"},
		{"empty signature", file, cert, ""},
		{"signature base64 of garbage", file, cert, base64.StdEncoding.EncodeToString([]byte("garbage"))},
		{"signature with excess padding", file, cert, sig + "="},
		{"no certificate", file, "", sig},
		{"broken certificate", file, garbageCert, sig},
		{"private key instead of certificate", file, string(keyPEM), sig},
		{"directory", dir, cert, sig},
		{"symlink to a directory", dirLink, cert, sig},
		{"missing file", filepath.Join(dir, "missing.bin"), cert, sig},
		{"empty path", "", cert, sig},
		{"FIFO", fifo, cert, sig},
		{"socket", sock, cert, sig},
	}
	if _, err := os.Stat("/dev/null"); err == nil {
		cases = append(cases, struct{ name, path, cert, sig string }{"device /dev/null", "/dev/null", cert, fwSign(t, e.pki.FirmwareSigner.Key, nil)})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan bool, 1)
			go func() { done <- e.s.VerifyFileSignature(tc.path, tc.cert, tc.sig) }()
			select {
			case ok := <-done:
				if ok {
					t.Fatal("verified")
				}
			case <-time.After(10 * time.Second):
				t.Fatal("verify_file_signature blocks")
			}
			if l := e.log.Take(); !strings.Contains(l, "level=WARN msg=\"verify_file_signature: ") {
				t.Fatalf("no reason logged:\n%s", l)
			}
			if e.verify(tc.path, tc.cert, tc.sig) {
				t.Fatal("verified through the dispatcher")
			}
		})
	}
}

// TestFirmwareSignerCheck: with verify_firmware_signer on, the signing certificate must also
// chain to the MF domain (OCPP's signed firmware update); off (the default), any certificate's
// valid signature counts, as the interface's command always did. The extra dispatcher command
// verify_firmware_signer reports the verification result.
func TestFirmwareSignerCheck(t *testing.T) {
	on := fwNewEnv(t, true)
	p := on.pki
	dir := t.TempDir()
	data := []byte("signed firmware")
	file := fwWrite(t, filepath.Join(dir, "fw.bin"), data)

	selfSigned, err := testpki.SelfSigned(fwSignerSpec("Self-signed signer"))
	if err != nil {
		t.Fatal(err)
	}
	strangerRoot, err := testpki.SelfSigned(testpki.Spec{CommonName: "Stranger MF root", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	strangerSigned := fwIssue(t, strangerRoot, fwSignerSpec("Stranger's signer"))
	expiredSpec := fwSignerSpec("Expired signer")
	expiredSpec.NotBefore, expiredSpec.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	expired := fwIssue(t, p.MFRoot, expiredSpec)
	mfSub := fwIssue(t, p.MFRoot, testpki.Spec{CommonName: "MF Sub-CA", IsCA: true, MaxPathLen: 0})
	viaSub := fwIssue(t, mfSub, fwSignerSpec("Signer under an MF sub-CA"))

	cases := []struct {
		name   string
		signer *testpki.Issued
		chain  string // the signing_certificate argument
		on     bool   // verify_file_signature with verify_firmware_signer on
		result store.ValidationResult
	}{
		{"MF signer", p.FirmwareSigner, string(p.FirmwareSigner.CertPEM()), true, store.ValidationValid},
		{"MF signer with its sub-CA", viaSub, string(testpki.CertsPEM(viaSub, mfSub)), true, store.ValidationValid},
		{"MF signer without its sub-CA", viaSub, string(viaSub.CertPEM()), false, store.ValidationIssuerNotFound},
		{"self-signed signer", selfSigned, string(selfSigned.CertPEM()), false, ""},
		{"signer of another root", strangerSigned, string(strangerSigned.CertPEM()), false, store.ValidationIssuerNotFound},
		{"expired MF signer", expired, string(expired.CertPEM()), false, store.ValidationExpired},
	}
	off := fwNewEnv(t, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig := fwSign(t, tc.signer.Key, data)
			if got := on.verify(file, tc.chain, sig); got != tc.on {
				t.Fatalf("verify_firmware_signer on: %v, want %v; log:\n%s", got, tc.on, on.log.Take())
			}
			if !off.verify(file, tc.chain, sig) {
				t.Fatalf("verify_firmware_signer off: a valid signature is rejected; log:\n%s", off.log.Take())
			}
			args, _ := json.Marshal(map[string]string{"signing_certificate": tc.chain})
			res, err := on.d.Call(context.Background(), "verify_firmware_signer", args)
			if err != nil {
				t.Fatal(err)
			}
			var got store.ValidationResult
			if err := json.Unmarshal(res, &got); err != nil {
				t.Fatal(err)
			}
			if tc.result != "" && got != tc.result || tc.result == "" && got == store.ValidationValid {
				t.Fatalf("verify_firmware_signer = %s, want %q", got, tc.result)
			}
		})
	}
	if got := on.s.VerifyFirmwareSigner("garbage"); got != store.ValidationUnknown {
		t.Fatalf("verify_firmware_signer(garbage) = %s, want Unknown", got)
	}
}

// fwZeroGiBSHA256 is the SHA-256 of 1 GiB of zero bytes (`truncate -s 1G f; sha256sum f`).
const fwZeroGiBSHA256 = "49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14"

// TestFirmwareLargeSparseFile: a 1 GiB firmware image (sparse, so the test costs no disk) verifies
// while the heap grows by far less than the file: the file is streamed, never read whole.
func TestFirmwareLargeSparseFile(t *testing.T) {
	e := fwNewEnv(t, false)
	file := filepath.Join(t.TempDir(), "huge.bin")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, 1<<30); err != nil {
		t.Skipf("cannot make a sparse file here: %v", err)
	}
	digest, _ := hex.DecodeString(fwZeroGiBSHA256)
	sig, err := ecdsa.SignASN1(rand.Reader, e.pki.FirmwareSigner.Key.(*ecdsa.PrivateKey), digest)
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.pki.FirmwareSigner.Cert.Raw}))
	sigB64 := base64.StdEncoding.EncodeToString(sig)

	const limit = 16 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	ok := e.s.VerifyFileSignature(file, cert, sigB64)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if !ok {
		t.Fatalf("1 GiB file rejected:\n%s", e.log.Take())
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	heapGrowth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("1 GiB verified in %v; allocated %d KiB, heap in use grew by %d KiB", elapsed.Round(time.Millisecond), allocated>>10, heapGrowth>>10)
	if allocated > limit || heapGrowth > limit {
		t.Fatalf("verifying 1 GiB allocated %d bytes (heap grew %d); want under %d", allocated, heapGrowth, limit)
	}
}
