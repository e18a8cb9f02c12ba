package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func bigHex(t testing.TB, s string) *big.Int {
	t.Helper()
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return n
}

func TestSerialHex(t *testing.T) {
	tests := []struct {
		in   string // hex, parsed with big.Int; "nil" for a nil serial
		want string
	}{
		{"nil", ""},
		{"0", "0"},
		{"1", "1"},
		{"0abc", "abc"},
		{"00ff", "ff"},
		{"ABCDEF", "abcdef"},
		{"4ED698D63C724C6A61A0CCC4FF80B383192DFD7A", "4ed698d63c724c6a61a0ccc4ff80b383192dfd7a"},
		{"-1a", "-1a"},
		{"-0001", "-1"},
	}
	for _, tt := range tests {
		var n *big.Int
		if tt.in != "nil" {
			n = bigHex(t, tt.in)
		}
		if got := SerialHex(n); got != tt.want {
			t.Errorf("SerialHex(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Valid SHA-256 hash data used as the base of the table tests.
var hd256 = HashData{
	Algorithm:      SHA256,
	IssuerNameHash: "82addb4b47026c702b9ed9d482c6e3570bbae9c49b963ec18b0a3523dfb47fe3",
	IssuerKeyHash:  "e9d2a6d245233edbf5a8319b99087313e16307ca29b388373d951b50e93090aa",
	SerialNumber:   "4ed698d63c724c6a61a0ccc4ff80b383192dfd7a",
}

func TestHashDataEqual(t *testing.T) {
	with := func(f func(*HashData)) HashData { h := hd256; f(&h); return h }
	tests := []struct {
		name string
		a, b HashData
		want bool
	}{
		{"identical", hd256, hd256, true},
		{"hash case", hd256, with(func(h *HashData) {
			h.IssuerNameHash = strings.ToUpper(h.IssuerNameHash)
			h.IssuerKeyHash = strings.ToUpper(h.IssuerKeyHash)
		}), true},
		{"serial case", hd256, with(func(h *HashData) { h.SerialNumber = strings.ToUpper(h.SerialNumber) }), true},
		{"serial leading zeros", with(func(h *HashData) { h.SerialNumber = "0A3F" }), with(func(h *HashData) { h.SerialNumber = "a3f" }), true},
		{"zero serial padded", with(func(h *HashData) { h.SerialNumber = "000" }), with(func(h *HashData) { h.SerialNumber = "0" }), true},
		{"empty serial is not zero", with(func(h *HashData) { h.SerialNumber = "" }), with(func(h *HashData) { h.SerialNumber = "0" }), false},
		{"other serial", hd256, with(func(h *HashData) { h.SerialNumber = "4ed698d63c724c6a61a0ccc4ff80b383192dfd7b" }), false},
		{"trailing zero matters", with(func(h *HashData) { h.SerialNumber = "a3f" }), with(func(h *HashData) { h.SerialNumber = "a3f0" }), false},
		{"other algorithm", hd256, with(func(h *HashData) { h.Algorithm = SHA384 }), false},
		{"other name hash", hd256, with(func(h *HashData) { h.IssuerNameHash = h.IssuerKeyHash }), false},
		{"other key hash", hd256, with(func(h *HashData) { h.IssuerKeyHash = h.IssuerNameHash }), false},
		{"no Unicode folding", with(func(h *HashData) { h.SerialNumber = "k" }), with(func(h *HashData) { h.SerialNumber = "\u212a" }), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%s: Equal = %v, want %v", tt.name, got, tt.want)
		}
		if got := tt.b.Equal(tt.a); got != tt.want {
			t.Errorf("%s: Equal is not symmetric", tt.name)
		}
		if tt.want && tt.a.Normalize() != tt.b.Normalize() {
			t.Errorf("%s: equal hash data normalize to %+v and %+v", tt.name, tt.a.Normalize(), tt.b.Normalize())
		}
	}
}

func TestHashDataNormalize(t *testing.T) {
	tests := []struct {
		in, want HashData
	}{
		{hd256, hd256},
		{HashData{"sha384", "ABCDEF", "0123aB", "000A3F"}, HashData{SHA384, "abcdef", "0123ab", "a3f"}},
		{HashData{SHA512, "", "", "0000"}, HashData{SHA512, "", "", "0"}},
		{HashData{"MD5", "AA", "BB", "0"}, HashData{"MD5", "aa", "bb", "0"}},
		{HashData{SHA256, "", "", ""}, HashData{SHA256, "", "", ""}},
	}
	for _, tt := range tests {
		if got := tt.in.Normalize(); got != tt.want {
			t.Errorf("%+v.Normalize() = %+v, want %+v", tt.in, got, tt.want)
		}
		if got := tt.want.Normalize(); got != tt.want {
			t.Errorf("Normalize is not idempotent on %+v: %+v", tt.want, got)
		}
	}
}

func TestHashDataValidate(t *testing.T) {
	with := func(f func(*HashData)) HashData { h := hd256; f(&h); return h }
	hex := func(n int) string { return strings.Repeat("ab", n/2) + strings.Repeat("c", n%2) }
	tests := []struct {
		name string
		h    HashData
		want string // "" for valid, else a substring of the error
	}{
		{"sha256", hd256, ""},
		{"sha384", HashData{SHA384, hex(96), hex(96), "1"}, ""},
		{"sha512", HashData{SHA512, hex(128), hex(128), "00"}, ""},
		{"uppercase hex", with(func(h *HashData) { h.IssuerKeyHash = strings.ToUpper(h.IssuerKeyHash); h.SerialNumber = "0A3F" }), ""},
		{"40-digit serial", with(func(h *HashData) { h.SerialNumber = hex(40) }), ""},
		{"padded 40-digit serial", with(func(h *HashData) { h.SerialNumber = "00" + hex(40) }), ""},
		{"41-digit serial", with(func(h *HashData) { h.SerialNumber = "1" + hex(40) }), "serial_number: 41 hex digits"},
		{"empty serial", with(func(h *HashData) { h.SerialNumber = "" }), "serial_number: empty"},
		{"negative serial", with(func(h *HashData) { h.SerialNumber = "-1a" }), "serial_number: not hexadecimal"},
		{"no algorithm", with(func(h *HashData) { h.Algorithm = "" }), "hash_algorithm"},
		{"unknown algorithm", with(func(h *HashData) { h.Algorithm = "SHA1" }), "hash_algorithm"},
		{"lowercase algorithm", with(func(h *HashData) { h.Algorithm = "sha256" }), "hash_algorithm"},
		{"short name hash", with(func(h *HashData) { h.IssuerNameHash = h.IssuerNameHash[1:] }), "issuer_name_hash: 63 hex digits, want 64"},
		{"empty name hash", with(func(h *HashData) { h.IssuerNameHash = "" }), "issuer_name_hash: 0 hex digits"},
		{"sha256 length for sha384", with(func(h *HashData) { h.Algorithm = SHA384 }), "issuer_name_hash: 64 hex digits, want 96"},
		{"non-hex key hash", with(func(h *HashData) { h.IssuerKeyHash = "g" + h.IssuerKeyHash[1:] }), "issuer_key_hash: not hexadecimal"},
		{"empty key hash", with(func(h *HashData) { h.IssuerKeyHash = "" }), "issuer_key_hash: 0 hex digits"},
	}
	for _, tt := range tests {
		err := tt.h.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: Validate = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestParseHashAlgorithm(t *testing.T) {
	tests := []struct {
		in   string
		want HashAlgorithm
		ok   bool
	}{
		{"SHA256", SHA256, true},
		{"sha384", SHA384, true},
		{"Sha512", SHA512, true},
		{"SHA-256", "", false},
		{"SHA1", "", false},
		{"", "", false},
		{" SHA256", "", false},
	}
	for _, tt := range tests {
		got, err := ParseHashAlgorithm(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseHashAlgorithm(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// readReferenceChain reads a fixture of the reference test suite from testdata/reference.
func readReferenceChain(t testing.TB, name string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "reference", "csms_certs", "client", name))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCertificates(data)
	if err != nil || len(certs) == 0 {
		t.Fatalf("%s: %d certificates, %v", name, len(certs), err)
	}
	return certs
}

// TestComputeHashDataReference checks the value the reference itself computed for its fixture
// (the OCSP cache test's SECC_LEAF_ocsp.hash).
func TestComputeHashDataReference(t *testing.T) {
	leaf := readReferenceChain(t, "SECC_LEAF_B.pem")[0]
	chain := readReferenceChain(t, "CPO_CERT_SECC_LEAF_CHAIN_B.pem")
	if !bytes.Equal(chain[0].Raw, leaf.Raw) {
		t.Fatal("chain B does not start with SECC_LEAF_B")
	}
	got, err := ComputeHashData(leaf, chain[1], SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got != hd256 {
		t.Errorf("hash data %+v, want %+v", got, hd256)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("computed hash data does not validate: %v", err)
	}
}

func TestComputeHashDataErrors(t *testing.T) {
	c := parseTestCert(t, "A")
	broken := *c
	broken.RawSubjectPublicKeyInfo = []byte{0x30, 0x00}
	trailing := *c
	trailing.RawSubjectPublicKeyInfo = append(append([]byte{}, c.RawSubjectPublicKeyInfo...), 0)
	tests := []struct {
		name         string
		cert, issuer *x509.Certificate
		alg          HashAlgorithm
	}{
		{"nil cert", nil, c, SHA256},
		{"nil issuer", c, nil, SHA256},
		{"unknown algorithm", c, c, "SHA1"},
		{"empty algorithm", c, c, ""},
		{"broken issuer key", c, &broken, SHA256},
		{"trailing data after issuer key", c, &trailing, SHA256},
	}
	for _, tt := range tests {
		if h, err := ComputeHashData(tt.cert, tt.issuer, tt.alg); err == nil {
			t.Errorf("%s: ComputeHashData = %+v, want an error", tt.name, h)
		}
	}
}

// TestComputeHashDataOpenSSL compares ComputeHashData with values taken apart by the openssl
// CLI: the issuer Name as encoded in the certificate (located with asn1parse), the issuer's
// public key BIT STRING contents (located with asn1parse in `x509 -pubkey` output), digested
// with `openssl dgst`, and the serial from `x509 -serial`.
func TestComputeHashDataOpenSSL(t *testing.T) {
	requireTool(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	ssl := func(args ...string) []byte { return runOpenSSL(t, dir, args...) }
	// A small RSA key keeps the test fast; only the shape of its BIT STRING matters.
	ssl("req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", "root.key", "-subj", "/CN=Hash Root CA/O=Test", "-days", "2", "-out", "root.pem")
	ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes", "-keyout", "sub.key", "-subj", "/CN=Hash Sub CA", "-out", "sub.csr")
	ssl("x509", "-req", "-in", "sub.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "0x0abc", "-days", "2", "-out", "sub.pem")
	ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key", "-utf8", "-subj", "/CN=Hash Leaf/O=Zoë", "-out", "leaf.csr")
	ssl("x509", "-req", "-in", "leaf.csr", "-CA", "sub.pem", "-CAkey", "sub.key", "-set_serial", "0x00f1e2d3c4b5a69788796a5b4c3d2e1f00112233", "-days", "2", "-out", "leaf.pem")
	ssl("x509", "-req", "-in", "leaf.csr", "-CA", "sub.pem", "-CAkey", "sub.key", "-set_serial", "1", "-days", "2", "-out", "leaf1.pem")

	load := func(name string) *x509.Certificate {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		certs, err := ParseCertificates(data)
		if err != nil || len(certs) != 1 {
			t.Fatalf("%s: %d certificates, %v", name, len(certs), err)
		}
		return certs[0]
	}
	// digest returns openssl dgst's hex digests of each of data, in one run.
	digest := func(alg HashAlgorithm, data ...[]byte) []string {
		args := []string{"dgst", "-" + strings.ToLower(string(alg)), "-r"}
		for _, d := range data {
			f, err := os.CreateTemp(dir, "dgst")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(d); err != nil {
				t.Fatal(err)
			}
			f.Close()
			args = append(args, filepath.Base(f.Name()))
		}
		var sums []string
		for _, line := range strings.Split(strings.TrimSpace(string(ssl(args...))), "\n") {
			sums = append(sums, strings.Fields(line)[0])
		}
		if len(sums) != len(data) {
			t.Fatalf("openssl dgst printed %d digests for %d files", len(sums), len(data))
		}
		return sums
	}

	tests := []struct{ cert, issuer string }{
		{"root.pem", "root.pem"}, // self-signed: its own key
		{"sub.pem", "root.pem"},  // RSA issuer key
		{"leaf.pem", "sub.pem"},  // EC issuer key, 20-byte serial with a leading zero nibble
		{"leaf1.pem", "sub.pem"},
	}
	for _, tt := range tests {
		cert, issuer := load(tt.cert), load(tt.issuer)

		// The issuer Name is the 4th field of TBSCertificate after the optional [0] version.
		der := ssl("x509", "-in", tt.cert, "-outform", "DER")
		tbs := asn1Parse(t, dir, der, 2)
		if tbs[0].header == "cont [ 0 ]" {
			tbs = tbs[1:]
		}
		issuerName := der[tbs[2].off : tbs[2].off+tbs[2].hl+tbs[2].l]

		// The issuer key's BIT STRING is the 2nd field of SubjectPublicKeyInfo; its contents
		// start after the unused-bits octet.
		block, _ := pem.Decode(ssl("x509", "-in", tt.issuer, "-noout", "-pubkey"))
		if block == nil || block.Type != "PUBLIC KEY" {
			t.Fatalf("%s: openssl x509 -pubkey printed no PUBLIC KEY", tt.issuer)
		}
		spki := asn1Parse(t, dir, block.Bytes, 1)
		if spki[1].header != "BIT STRING" {
			t.Fatalf("%s: SubjectPublicKeyInfo field 2 is %q", tt.issuer, spki[1].header)
		}
		keyBits := block.Bytes[spki[1].off+spki[1].hl+1 : spki[1].off+spki[1].hl+spki[1].l]

		serialLine := strings.TrimSpace(string(ssl("x509", "-in", tt.cert, "-noout", "-serial")))
		serial := strings.TrimLeft(strings.ToLower(strings.TrimPrefix(serialLine, "serial=")), "0")
		if serial == "" {
			serial = "0"
		}

		for _, alg := range []HashAlgorithm{SHA256, SHA384, SHA512} {
			sums := digest(alg, issuerName, keyBits)
			want := HashData{Algorithm: alg, IssuerNameHash: sums[0], IssuerKeyHash: sums[1], SerialNumber: serial}
			got, err := ComputeHashData(cert, issuer, alg)
			if err != nil {
				t.Fatalf("%s/%s: %v", tt.cert, alg, err)
			}
			if got != want {
				t.Errorf("%s by %s, %s:\n got %+v\nwant %+v", tt.cert, tt.issuer, alg, got, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("%s/%s: %v", tt.cert, alg, err)
			}
		}
	}
}

// asn1Field is one line of `openssl asn1parse` output.
type asn1Field struct {
	off, hl, l int
	header     string // e.g. "SEQUENCE", "BIT STRING", "cont [ 0 ]"
}

// asn1Parse runs `openssl asn1parse` on der and returns the elements at the given depth, in order.
func asn1Parse(t testing.TB, dir string, der []byte, depth int) []asn1Field {
	t.Helper()
	f, err := os.CreateTemp(dir, "der")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(der); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := runOpenSSL(t, dir, "asn1parse", "-inform", "DER", "-in", filepath.Base(f.Name()))
	var fields []asn1Field
	want := fmt.Sprintf("d=%d ", depth)
	for _, line := range strings.Split(string(out), "\n") {
		// "   47:d=2  hl=2 l=  31 cons: SEQUENCE          "
		off, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(rest, want) {
			continue
		}
		var hl, l int
		var kind string
		if _, err := fmt.Sscanf(rest[len(want):], " hl=%d l=%d %s", &hl, &l, &kind); err != nil {
			t.Fatalf("asn1parse line %q: %v", line, err)
		}
		_, header, _ := strings.Cut(rest, kind)
		header, _, _ = strings.Cut(strings.TrimSpace(header), ":")
		o, err := strconv.Atoi(strings.TrimSpace(off))
		if err != nil {
			t.Fatalf("asn1parse line %q: %v", line, err)
		}
		fields = append(fields, asn1Field{off: o, hl: hl, l: l, header: strings.TrimSpace(header)})
	}
	if len(fields) == 0 {
		t.Fatalf("asn1parse found nothing at depth %d:\n%s", depth, out)
	}
	return fields
}
