package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// parseTestCert makes a throw-away self-signed certificate for the parser tests, which need
// certificates but not any particular PKI.
func parseTestCert(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func pemOf(label string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: label, Bytes: der}))
}

// parseTestKeyPEM returns a fresh EC private key block, the kind of non-certificate block that
// turns up in bundles and must be skipped.
func parseTestKeyPEM(t testing.TB) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("EC PRIVATE KEY", der)
}

func TestParsePEMBlocks(t *testing.T) {
	a, b, c := parseTestCert(t, "A"), parseTestCert(t, "B"), parseTestCert(t, "C")
	pa, pb, pc := pemOf("CERTIFICATE", a.Raw), pemOf("CERTIFICATE", b.Raw), pemOf("CERTIFICATE", c.Raw)
	ecKeyPEM := parseTestKeyPEM(t)

	tests := []struct {
		name   string
		data   string
		want   []*x509.Certificate
		labels []string // defaults to CERTIFICATE for every block
	}{
		{"empty", "", nil, nil},
		{"garbage text", "InvalidCertificate", nil, nil},
		{"no BEGIN marker", "-----END CERTIFICATE-----\n", nil, nil},
		{"one", pa, []*x509.Certificate{a}, nil},
		{"bundle in order", pa + pb + pc, []*x509.Certificate{a, b, c}, nil},
		{"text between blocks", "subject=CN = A\nissuer=CN = A\n" + pa + "\nsubject=CN = B\n" + pb + "trailing words\n",
			[]*x509.Certificate{a, b}, nil},
		{"CRLF", crlf(pa + "subject=B\n" + pb), []*x509.Certificate{a, b}, nil},
		{"no final newline", pa + strings.TrimSuffix(pb, "\n"), []*x509.Certificate{a, b}, nil},
		{"indented markers and trailing blanks", "  " + strings.Replace(pa, "-----\n", "-----  \n", -1), []*x509.Certificate{a}, nil},
		{"key block skipped", pa + ecKeyPEM + pb, []*x509.Certificate{a, b}, nil},
		{"broken key block skipped", "-----BEGIN PRIVATE KEY-----\nnot base64 !!\n" + pa + "-----BEGIN EC PRIVATE KEY-----oops\n",
			[]*x509.Certificate{a}, nil},
		{"CRL and CSR labels skipped", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n" + pa +
			"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", []*x509.Certificate{a}, nil},
		{"X509 CERTIFICATE label", pemOf("X509 CERTIFICATE", a.Raw) + pb, []*x509.Certificate{a, b},
			[]string{"X509 CERTIFICATE", "CERTIFICATE"}},
		{"TRUSTED CERTIFICATE without aux", pemOf("TRUSTED CERTIFICATE", a.Raw), []*x509.Certificate{a},
			[]string{"TRUSTED CERTIFICATE"}},
		{"TRUSTED CERTIFICATE with aux", pemOf("TRUSTED CERTIFICATE", append(append([]byte{}, a.Raw...), 0x30, 0x03, 0x30, 0x01, 0x00)),
			[]*x509.Certificate{a}, []string{"TRUSTED CERTIFICATE"}},
		{"header lines", strings.Replace(pa, "-----\n", "-----\nComment: hello\n\n", 1), []*x509.Certificate{a}, nil},
		{"unwrapped base64 line", "-----BEGIN CERTIFICATE-----\n" + base64Line(a.Raw) + "\n-----END CERTIFICATE-----\n",
			[]*x509.Certificate{a}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks, err := ParsePEMBlocks([]byte(tt.data))
			if err != nil {
				t.Fatalf("ParsePEMBlocks: %v", err)
			}
			if len(blocks) != len(tt.want) {
				t.Fatalf("got %d blocks, want %d", len(blocks), len(tt.want))
			}
			for i, blk := range blocks {
				if !bytes.Equal(blk.Cert.Raw, tt.want[i].Raw) {
					t.Errorf("block %d: wrong certificate %q", i, blk.Cert.Subject.CommonName)
				}
				label := "CERTIFICATE"
				if tt.labels != nil {
					label = tt.labels[i]
				}
				if blk.Label != label {
					t.Errorf("block %d: label %q, want %q", i, blk.Label, label)
				}
				text := tt.data[blk.Start:blk.End]
				if !strings.HasPrefix(text, "-----BEGIN "+label+"-----") {
					t.Errorf("block %d does not start at its BEGIN marker: %q", i, text)
				}
				// The block on its own parses to the same certificate.
				again, err := ParsePEMBlocks([]byte(text))
				if err != nil || len(again) != 1 || !bytes.Equal(again[0].Cert.Raw, blk.Cert.Raw) {
					t.Errorf("block %d excised as %q does not parse alone (%v)", i, text, err)
				}
			}
			certs, err := ParseCertificates([]byte(tt.data))
			if err != nil || len(certs) != len(tt.want) {
				t.Errorf("ParseCertificates = %d certs, %v; want %d", len(certs), err, len(tt.want))
			}
		})
	}
}

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func base64Line(der []byte) string {
	p := pemOf("X", der)
	p = strings.TrimPrefix(p, "-----BEGIN X-----\n")
	p = strings.TrimSuffix(p, "-----END X-----\n")
	return strings.ReplaceAll(p, "\n", "")
}

func TestParsePEMBlocksOffsets(t *testing.T) {
	a, b, c := parseTestCert(t, "A"), parseTestCert(t, "B"), parseTestCert(t, "C")
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("eol=%q", eol), func(t *testing.T) {
			pa := strings.ReplaceAll(pemOf("CERTIFICATE", a.Raw), "\n", eol)
			pb := strings.ReplaceAll(pemOf("CERTIFICATE", b.Raw), "\n", eol)
			pc := strings.ReplaceAll(pemOf("CERTIFICATE", c.Raw), "\n", eol)
			head, mid, tail := "# bundle"+eol, "subject=CN = B"+eol, "# end"+eol
			data := head + pa + mid + pb + pc + tail
			blocks, err := ParsePEMBlocks([]byte(data))
			if err != nil {
				t.Fatal(err)
			}
			if len(blocks) != 3 {
				t.Fatalf("got %d blocks", len(blocks))
			}
			for i, want := range []string{pa, pb, pc} {
				if got := data[blocks[i].Start:blocks[i].End]; got != want {
					t.Errorf("block %d is %q, want %q", i, got, want)
				}
			}
			// Cutting out B leaves every other byte of the file as it was.
			cut := data[:blocks[1].Start] + data[blocks[1].End:]
			if want := head + pa + mid + pc + tail; cut != want {
				t.Errorf("excising B left %q, want %q", cut, want)
			}
		})
	}

	t.Run("no trailing line break", func(t *testing.T) {
		data := strings.TrimSuffix(pemOf("CERTIFICATE", a.Raw), "\n")
		blocks, err := ParsePEMBlocks([]byte(data))
		if err != nil || len(blocks) != 1 {
			t.Fatalf("got %d blocks, %v", len(blocks), err)
		}
		if blocks[0].Start != 0 || blocks[0].End != len(data) {
			t.Errorf("block spans [%d,%d), want [0,%d)", blocks[0].Start, blocks[0].End, len(data))
		}
	})
	t.Run("text glued to END marker", func(t *testing.T) {
		pa := pemOf("CERTIFICATE", a.Raw)
		data := strings.TrimSuffix(pa, "\n") + "subject=x\n"
		blocks, err := ParsePEMBlocks([]byte(data))
		if err != nil || len(blocks) != 1 {
			t.Fatalf("got %d blocks, %v", len(blocks), err)
		}
		if got := data[blocks[0].End:]; got != "subject=x\n" {
			t.Errorf("after the block: %q", got)
		}
	})
}

func TestParsePEMBlocksErrors(t *testing.T) {
	a := parseTestCert(t, "A")
	pa := pemOf("CERTIFICATE", a.Raw)
	ecKeyPEM := parseTestKeyPEM(t)
	trailing := pemOf("CERTIFICATE", append(append([]byte{}, a.Raw...), 0x05, 0x00))

	tests := []struct {
		name   string
		data   string
		index  int
		label  string
		reason string // substring of the error
	}{
		{"one-line block", "-----BEGIN CERTIFICATE-----InvalidCertificate-----END CERTIFICATE-----", 0, "CERTIFICATE", "text follows the BEGIN marker"},
		{"INVALID body", "-----BEGIN CERTIFICATE-----\nINVALID\n-----END CERTIFICATE-----", 0, "CERTIFICATE", "base64"},
		{"INVALID body CRLF", "-----BEGIN CERTIFICATE-----\r\nINVALID\r\n-----END CERTIFICATE-----\r\n", 0, "CERTIFICATE", "base64"},
		{"broken base64 after good blocks", pa + pa + "-----BEGIN CERTIFICATE-----\nMIIB!!==\n-----END CERTIFICATE-----\n", 2, "CERTIFICATE", "base64"},
		{"no END line", pa + "-----BEGIN CERTIFICATE-----\n" + base64Line(a.Raw) + "\n", 1, "CERTIFICATE", "no END line"},
		{"no END before next block", "-----BEGIN CERTIFICATE-----\nAAAA\n" + pa, 0, "CERTIFICATE", "no END line"},
		{"END label mismatch", strings.Replace(pa, "END CERTIFICATE", "END X509 CRL", 1), 0, "CERTIFICATE", "END line does not match"},
		{"BEGIN line without closing dashes", "-----BEGIN CERTIFICATE\n" + base64Line(a.Raw) + "\n-----END CERTIFICATE-----\n", 0, "CERTIFICATE", "does not end in -----"},
		{"DER is not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0, "CERTIFICATE", "x509"},
		{"empty body", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0, "CERTIFICATE", "empty"},
		{"trailing data after certificate", trailing, 0, "CERTIFICATE", "trailing data"},
		{"index counts skipped blocks", ecKeyPEM + pa + "-----BEGIN X509 CERTIFICATE-----\nINVALID\n-----END X509 CERTIFICATE-----\n", 2, "X509 CERTIFICATE", "base64"},
		{"TRUSTED CERTIFICATE not a SEQUENCE", "-----BEGIN TRUSTED CERTIFICATE-----\nBQA=\n-----END TRUSTED CERTIFICATE-----\n", 0, "TRUSTED CERTIFICATE", "SEQUENCE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, parse := range []func([]byte) (int, error){
				func(d []byte) (int, error) { b, err := ParsePEMBlocks(d); return len(b), err },
				func(d []byte) (int, error) { c, err := ParseCertificates(d); return len(c), err },
			} {
				n, err := parse([]byte(tt.data))
				var be *BlockError
				if !errors.As(err, &be) {
					t.Fatalf("got %d certificates and error %v, want a *BlockError", n, err)
				}
				if n != 0 {
					t.Errorf("got %d certificates alongside the error", n)
				}
				offset := nthIndex(tt.data, "-----BEGIN ", tt.index)
				if be.Index != tt.index || be.Label != tt.label || be.Offset != offset {
					t.Errorf("error names block %d (%s) at %d, want %d (%s) at %d", be.Index, be.Label, be.Offset, tt.index, tt.label, offset)
				}
				msg := be.Error()
				if prefix := fmt.Sprintf("PEM block %d (%s) at byte %d: ", tt.index, tt.label, offset); !strings.HasPrefix(msg, prefix) {
					t.Errorf("message %q does not start with %q", msg, prefix)
				}
				if !strings.Contains(msg, tt.reason) {
					t.Errorf("message %q does not mention %q", msg, tt.reason)
				}
			}
		})
	}
}

func nthIndex(s, sub string, n int) int {
	off := 0
	for i := 0; ; i++ {
		j := strings.Index(s[off:], sub)
		if j < 0 {
			return -1
		}
		if i == n {
			return off + j
		}
		off += j + len(sub)
	}
}

func TestParseCertificatesDER(t *testing.T) {
	a, b := parseTestCert(t, "A"), parseTestCert(t, "B")
	tests := []struct {
		name string
		data []byte
		want []*x509.Certificate
	}{
		{"nil", nil, nil},
		{"empty", []byte{}, nil},
		{"garbage text", []byte("InvalidCertificate"), nil},
		{"binary garbage", []byte{0x30, 0x82, 0xff, 0xff, 0x00}, nil},
		{"single DER", a.Raw, []*x509.Certificate{a}},
		{"concatenated DER", append(append([]byte{}, a.Raw...), b.Raw...), []*x509.Certificate{a, b}},
		{"DER with garbage appended", append(append([]byte{}, a.Raw...), 'x'), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseCertificates(tt.data)
			if err != nil {
				t.Fatalf("ParseCertificates: %v", err)
			}
			if len(certs) != len(tt.want) {
				t.Fatalf("got %d certificates, want %d", len(certs), len(tt.want))
			}
			for i := range certs {
				if !bytes.Equal(certs[i].Raw, tt.want[i].Raw) {
					t.Errorf("certificate %d differs", i)
				}
			}
		})
	}
}

func TestEncodePEM(t *testing.T) {
	a, b := parseTestCert(t, "A"), parseTestCert(t, "B")
	got := EncodePEM(a, b)
	if want := pemOf("CERTIFICATE", a.Raw) + pemOf("CERTIFICATE", b.Raw); string(got) != want {
		t.Errorf("EncodePEM = %q, want %q", got, want)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		if len(line) > 64 {
			t.Errorf("line longer than 64 columns: %q", line)
		}
	}
	certs, err := ParseCertificates(got)
	if err != nil || len(certs) != 2 || !bytes.Equal(certs[0].Raw, a.Raw) || !bytes.Equal(certs[1].Raw, b.Raw) {
		t.Errorf("round trip: %d certs, %v", len(certs), err)
	}
	if len(EncodePEM()) != 0 {
		t.Error("EncodePEM() is not empty")
	}
}

// TestOpenSSLPEM checks the parser against PEM text OpenSSL writes: TRUSTED CERTIFICATE blocks
// with trust settings appended (X509_CERT_AUX), and that EncodePEM writes what
// PEM_write_bio_X509 writes.
func TestOpenSSLPEM(t *testing.T) {
	requireTool(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	runOpenSSL(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "k.pem", "-subj", "/CN=Trusted Root", "-days", "2", "-out", "c.pem")
	trusted := runOpenSSL(t, dir, "x509", "-in", "c.pem", "-trustout", "-addtrust", "serverAuth", "-setalias", "root")
	if !bytes.Contains(trusted, []byte("-----BEGIN TRUSTED CERTIFICATE-----")) {
		t.Fatalf("openssl did not write a TRUSTED CERTIFICATE block:\n%s", trusted)
	}
	plain, err := os.ReadFile(filepath.Join(dir, "c.pem"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ParseCertificates(plain)
	if err != nil || len(want) != 1 {
		t.Fatalf("plain: %d certs, %v", len(want), err)
	}
	// The trusted form with a key and text around it, as some tools write bundles.
	data := append(append([]byte("Trusted root:\n"), trusted...), parseTestKeyPEM(t)...)
	blocks, err := ParsePEMBlocks(data)
	if err != nil {
		t.Fatalf("ParsePEMBlocks: %v", err)
	}
	if len(blocks) != 1 || blocks[0].Label != "TRUSTED CERTIFICATE" || !bytes.Equal(blocks[0].Cert.Raw, want[0].Raw) {
		t.Fatalf("got %+v, want the plain certificate labelled TRUSTED CERTIFICATE", blocks)
	}
	if got := string(data[blocks[0].Start:blocks[0].End]); got != string(trusted) {
		t.Errorf("block text %q, want %q", got, trusted)
	}
	// PEM_write_bio_X509 output equals ours byte for byte (openssl x509 re-encodes the input).
	reencoded := runOpenSSL(t, dir, "x509", "-in", "c.pem")
	if got := EncodePEM(want[0]); string(got) != string(reencoded) {
		t.Errorf("EncodePEM = %q, openssl wrote %q", got, reencoded)
	}
}

func FuzzParsePEMBlocks(f *testing.F) {
	cert := parseTestCert(f, "fuzz")
	p := pemOf("CERTIFICATE", cert.Raw)
	f.Add([]byte(p))
	f.Add([]byte(crlf("subject=x\n" + p + parseTestKeyPEM(f) + p)))
	f.Add([]byte("-----BEGIN CERTIFICATE-----InvalidCertificate-----END CERTIFICATE-----"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nINVALID\n-----END CERTIFICATE-----"))
	f.Add([]byte(pemOf("TRUSTED CERTIFICATE", append(append([]byte{}, cert.Raw...), 0x30, 0x00))))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nA: b\n\n-----END CERTIFICATE-----\n-----BEGIN "))
	f.Add(cert.Raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		blocks, err := ParsePEMBlocks(data)
		if err != nil {
			var be *BlockError
			if !errors.As(err, &be) || be.Offset < 0 || be.Offset >= len(data) {
				t.Fatalf("error %v is not a BlockError inside the input", err)
			}
			return
		}
		prev := 0
		for i, b := range blocks {
			if b.Start < prev || b.End <= b.Start || b.End > len(data) {
				t.Fatalf("block %d spans [%d,%d) after %d in %d bytes", i, b.Start, b.End, prev, len(data))
			}
			if !bytes.HasPrefix(data[b.Start:], []byte("-----BEGIN "+b.Label+"-----")) || b.Cert == nil {
				t.Fatalf("block %d does not start with its BEGIN marker", i)
			}
			again, err := ParsePEMBlocks(data[b.Start:b.End])
			if err != nil || len(again) != 1 || !bytes.Equal(again[0].Cert.Raw, b.Cert.Raw) {
				t.Fatalf("block %d does not parse alone: %v", i, err)
			}
			prev = b.End
		}
		if _, err := ParseCertificates(data); err != nil {
			t.Fatalf("ParseCertificates fails where ParsePEMBlocks did not: %v", err)
		}
	})
}
