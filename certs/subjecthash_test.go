package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// DER building blocks for names the standard library would never write.

func derTLV(tag byte, contents ...[]byte) []byte {
	c := bytes.Join(contents, nil)
	return append(appendHeader(nil, cbasn1.Tag(tag), len(c)), c...)
}

func nameOf(rdns ...[]byte) []byte { return derTLV(0x30, rdns...) }

func rdnOf(atvs ...[]byte) []byte { return derTLV(0x31, atvs...) }

func atvOf(oid asn1.ObjectIdentifier, tag byte, value []byte) []byte {
	o, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return derTLV(0x30, o, derTLV(tag, value))
}

var (
	oidCN    = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidO     = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidOU    = asn1.ObjectIdentifier{2, 5, 4, 11}
	oidSN    = asn1.ObjectIdentifier{2, 5, 4, 5} // serialNumber, PrintableString
	oidDC    = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

const (
	utf8T      = 12
	numericT   = 18
	printableT = 19
	t61T       = 20
	ia5T       = 22
	visibleT   = 26
	universalT = 28
	bmpT       = 30
)

func bmp(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}

func ucs4(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r>>24), byte(r>>16), byte(r>>8), byte(r))
	}
	return b
}

// canonOf is the expected canonical encoding: RDN SETs without the outer SEQUENCE.
func canonOf(rdns ...[]byte) []byte { return bytes.Join(rdns, nil) }

func TestCanonicalName(t *testing.T) {
	long := strings.Repeat("Ab", 100)   // contents of 128..255 bytes: one length octet
	longer := strings.Repeat("Ab", 200) // 256 and more: two length octets
	tests := []struct {
		name string
		raw  []byte
		want []byte
	}{
		{"empty name", nameOf(), nil},
		{"PrintableString trimmed, collapsed, lowercased",
			nameOf(rdnOf(atvOf(oidCN, printableT, []byte("  Foo   BAR  ")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("foo bar"))))},
		{"all ASCII whitespace kinds",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("\t\n\v\f\r a \t\n\v\f\r b \r\n")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("a b"))))},
		{"non-ASCII kept, ASCII lowercased",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("ÄÖÜ Zoë 日本")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("ÄÖÜ zoë 日本"))))},
		{"no-break space is not whitespace",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("\u00a0A\u00a0")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("\u00a0a\u00a0"))))},
		{"whitespace only becomes empty",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte(" \t ")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, nil)))},
		{"BMPString", nameOf(rdnOf(atvOf(oidCN, bmpT, bmp("Ünï CA")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("Ünï ca"))))},
		{"UniversalString", nameOf(rdnOf(atvOf(oidCN, universalT, ucs4("AB 😀")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("ab 😀"))))},
		{"T61String as Latin-1", nameOf(rdnOf(atvOf(oidCN, t61T, []byte("Caf\xe9 X")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("café x"))))},
		{"IA5String and VisibleString", nameOf(rdnOf(atvOf(oidEmail, ia5T, []byte("A@B.C"))), rdnOf(atvOf(oidCN, visibleT, []byte("V  S")))),
			canonOf(rdnOf(atvOf(oidEmail, utf8T, []byte("a@b.c"))), rdnOf(atvOf(oidCN, utf8T, []byte("v s"))))},
		{"NumericString kept as is", nameOf(rdnOf(atvOf(oidSN, numericT, []byte(" 12  3 ")))),
			canonOf(rdnOf(atvOf(oidSN, numericT, []byte(" 12  3 "))))},
		{"OCTET STRING kept as is", nameOf(rdnOf(atvOf(oidCN, 0x04, []byte("AB")))),
			canonOf(rdnOf(atvOf(oidCN, 0x04, []byte("AB"))))},
		{"multi-valued RDN sorted after canonicalisation",
			nameOf(rdnOf(atvOf(oidOU, utf8T, []byte("b")), atvOf(oidCN, printableT, []byte("B")), atvOf(oidCN, utf8T, []byte("a")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("a")), atvOf(oidCN, utf8T, []byte("b")), atvOf(oidOU, utf8T, []byte("b"))))},
		{"empty RDN dropped",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a"))), rdnOf(), rdnOf(atvOf(oidO, utf8T, []byte("b")))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte("a"))), rdnOf(atvOf(oidO, utf8T, []byte("b"))))},
		{"only empty RDNs", nameOf(rdnOf(), rdnOf()), nil},
		{"long-form lengths", nameOf(rdnOf(atvOf(oidCN, printableT, []byte(long))), rdnOf(atvOf(oidO, utf8T, []byte(long)))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte(strings.ToLower(long)))), rdnOf(atvOf(oidO, utf8T, []byte(strings.ToLower(long)))))},
		{"two-octet lengths", nameOf(rdnOf(atvOf(oidCN, bmpT, bmp(longer)))),
			canonOf(rdnOf(atvOf(oidCN, utf8T, []byte(strings.ToLower(longer)))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalName(tt.raw)
			if err != nil {
				t.Fatalf("CanonicalName: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("CanonicalName(%x)\n got %x\nwant %x", tt.raw, got, tt.want)
			}
			// Canonicalising is idempotent.
			again, err := CanonicalName(nameOf(got))
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("canonical form is not a fixed point: %x, %v", again, err)
			}
			if !NamesEqual(tt.raw, nameOf(got)) {
				t.Error("name is not equal to its canonical form")
			}
		})
	}
}

func TestCanonicalNameErrors(t *testing.T) {
	good := nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a"))))
	tests := []struct {
		name string
		raw  []byte
	}{
		{"nil", nil},
		{"not a SEQUENCE", derTLV(0x31)},
		{"trailing data", append(append([]byte{}, good...), 0)},
		{"truncated", good[:len(good)-1]},
		{"indefinite length", []byte{0x30, 0x80, 0x00, 0x00}},
		{"non-minimal length", []byte{0x30, 0x81, 0x00}},
		{"RDN not a SET", nameOf(derTLV(0x30, atvOf(oidCN, utf8T, []byte("a"))))},
		{"attribute not a SEQUENCE", nameOf(rdnOf(derTLV(0x31)))},
		{"attribute without value", nameOf(rdnOf(derTLV(0x30, []byte{0x06, 0x03, 0x55, 0x04, 0x03})))},
		{"attribute with two values", nameOf(rdnOf(derTLV(0x30, []byte{0x06, 0x03, 0x55, 0x04, 0x03}, derTLV(utf8T), derTLV(utf8T))))},
		{"type not an OID", nameOf(rdnOf(derTLV(0x30, derTLV(utf8T, []byte("x")), derTLV(utf8T, []byte("a")))))},
		{"empty OID", nameOf(rdnOf(derTLV(0x30, derTLV(0x06), derTLV(utf8T, []byte("a")))))},
		{"OID with 0x80 padding", nameOf(rdnOf(derTLV(0x30, derTLV(0x06, []byte{0x55, 0x80, 0x03}), derTLV(utf8T, []byte("a")))))},
		{"OID cut mid-subidentifier", nameOf(rdnOf(derTLV(0x30, derTLV(0x06, []byte{0x55, 0x84}), derTLV(utf8T, []byte("a")))))},
		{"invalid UTF8String", nameOf(rdnOf(atvOf(oidCN, utf8T, []byte{'a', 0xff})))},
		{"UTF8String surrogate", nameOf(rdnOf(atvOf(oidCN, utf8T, []byte{0xed, 0xa0, 0x80})))},
		{"odd BMPString", nameOf(rdnOf(atvOf(oidCN, bmpT, []byte{0, 'a', 0})))},
		{"BMPString surrogate pair", nameOf(rdnOf(atvOf(oidCN, bmpT, []byte{0xd8, 0x3d, 0xde, 0x00})))},
		{"UniversalString length", nameOf(rdnOf(atvOf(oidCN, universalT, []byte{0, 0, 'a'})))},
		{"UniversalString beyond Unicode", nameOf(rdnOf(atvOf(oidCN, universalT, []byte{0, 0x11, 0, 0})))},
	}
	for _, tt := range tests {
		if got, err := CanonicalName(tt.raw); err == nil {
			t.Errorf("%s: CanonicalName = %x, want an error", tt.name, got)
		}
		if _, err := NameHash(tt.raw); err == nil {
			t.Errorf("%s: NameHash did not fail", tt.name)
		}
		if NamesEqual(tt.raw, good) || NamesEqual(good, tt.raw) {
			t.Errorf("%s: equal to a valid name", tt.name)
		}
		if !NamesEqual(tt.raw, bytes.Clone(tt.raw)) {
			t.Errorf("%s: byte-equal names are not equal", tt.name)
		}
	}
}

func TestNamesEqual(t *testing.T) {
	acme := nameOf(rdnOf(atvOf(oidCN, printableT, []byte("Test CA"))), rdnOf(atvOf(oidO, printableT, []byte("ACME"))))
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"same bytes", acme, bytes.Clone(acme), true},
		{"case, spacing and string type", acme,
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("  test   ca"))), rdnOf(atvOf(oidO, bmpT, bmp("acme ")))), true},
		{"RDN order matters", acme, nameOf(rdnOf(atvOf(oidO, printableT, []byte("ACME"))), rdnOf(atvOf(oidCN, printableT, []byte("Test CA")))), false},
		{"multi-valued RDN order does not",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a")), atvOf(oidOU, utf8T, []byte("b")))),
			nameOf(rdnOf(atvOf(oidOU, utf8T, []byte("b")), atvOf(oidCN, utf8T, []byte("a")))), true},
		{"RDN split differently", nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a")), atvOf(oidOU, utf8T, []byte("b")))),
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a"))), rdnOf(atvOf(oidOU, utf8T, []byte("b")))), false},
		{"non-ASCII case differs", nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("É")))), nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("é")))), false},
		{"other value", acme, nameOf(rdnOf(atvOf(oidCN, printableT, []byte("Test CB"))), rdnOf(atvOf(oidO, printableT, []byte("ACME")))), false},
		{"NumericString is not a text type", nameOf(rdnOf(atvOf(oidSN, numericT, []byte("123")))), nameOf(rdnOf(atvOf(oidSN, printableT, []byte("123")))), false},
		{"empty names", nameOf(), nameOf(rdnOf()), true},
		{"empty and non-empty", nameOf(), acme, false},
	}
	for _, tt := range tests {
		if got := NamesEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: NamesEqual = %v, want %v", tt.name, got, tt.want)
		}
		if got := NamesEqual(tt.b, tt.a); got != tt.want {
			t.Errorf("%s: NamesEqual is not symmetric", tt.name)
		}
		ha, erra := NameHash(tt.a)
		hb, errb := NameHash(tt.b)
		if erra != nil || errb != nil || (ha == hb) != tt.want {
			t.Errorf("%s: hashes %08x, %08x (%v, %v)", tt.name, ha, hb, erra, errb)
		}
	}
}

func TestFormatNameHash(t *testing.T) {
	for h, want := range map[uint32]string{0: "00000000", 1: "00000001", 0xeea339da: "eea339da", 0xffffffff: "ffffffff"} {
		if got := FormatNameHash(h); got != want {
			t.Errorf("FormatNameHash(%#x) = %q, want %q", h, got, want)
		}
	}
}

// TestSubjectHashFixed pins values printed by `openssl x509 -noout -subject_hash`, so the hash
// is checked even where the openssl CLI is not installed.
func TestSubjectHashFixed(t *testing.T) {
	leaf := readReferenceChain(t, "SECC_LEAF_B.pem")[0]
	if got := FormatNameHash(SubjectHash(leaf)); got != "820d4a91" {
		t.Errorf("SECC_LEAF_B subject hash %s, want 820d4a91", got)
	}
	if h, err := NameHash(nameOf()); err != nil || h != 0xeea339da { // SHA-1 of nothing
		t.Errorf("empty name hash %08x, %v; want eea339da", h, err)
	}
	broken := *leaf
	broken.RawSubject = []byte{0x30}
	if h := SubjectHash(&broken); h != 0 {
		t.Errorf("SubjectHash of an unparsable subject = %08x, want 0", h)
	}
}

func TestNameHashAllocations(t *testing.T) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				t.Skip("the race detector's instrumentation allocates")
			}
		}
	}
	leaf := readReferenceChain(t, "CPO_CERT_SECC_LEAF_CHAIN_B.pem")[1]
	multi := nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a")), atvOf(oidOU, utf8T, []byte("b"))), rdnOf(atvOf(oidO, bmpT, bmp("Org"))))
	for name, raw := range map[string][]byte{"single-valued": leaf.RawSubject, "multi-valued": multi} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := NameHash(raw); err != nil {
				t.Fatal(err)
			}
		})
		// One output buffer and a few scratch buffers; a regression to per-attribute garbage
		// (pkix.Name, strings) would show up here.
		if allocs > 5 {
			t.Errorf("%s: NameHash makes %.0f allocations", name, allocs)
		}
	}
}

// subjectHashCase is a certificate subject for the differential test, made either by openssl req
// (subj, flags, stringMask) or by crypto/x509 with a hand-encoded subject (raw).
type subjectHashCase struct {
	name       string
	subj       string
	flags      []string
	stringMask string // string_mask of the req config; "" for openssl's default config
	raw        []byte
	// opensslRejects marks a value type outside OpenSSL's ASN1_PRINTABLE (VisibleString, OCTET
	// STRING, context-specific): OpenSSL cannot load such a certificate at all, so there is no
	// hash to compare with.
	opensslRejects bool
}

// TestSubjectHashOpenSSL compares SubjectHash with `openssl x509 -noout -subject_hash` on
// certificates with every kind of subject the canonical encoding treats specially, and checks
// that a name OpenSSL refuses to load is one CanonicalName rejects too.
func TestSubjectHashOpenSSL(t *testing.T) {
	requireTool(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	tests := []subjectHashCase{
		{name: "plain", subj: "/CN=Foo Bar/O=ACME"},
		{name: "case and spacing", subj: "/CN=  foo   BAR /O=acme"},
		{name: "non-ASCII UTF-8", subj: "/CN=Zoë ÄÖÜ Straße/O=日本語 テスト", flags: []string{"-utf8"}},
		{name: "IA5 emailAddress and DC", subj: "/DC=Example/DC=COM/CN=Mail Box/emailAddress=Someone@Example.COM"},
		{name: "multi-valued RDN", subj: "/CN=a+OU=b/O=x", flags: []string{"-multivalue-rdn"}},
		{name: "multi-valued RDN reordered", subj: "/OU=B+CN=A/O=X", flags: []string{"-multivalue-rdn"}},
		{name: "T61String", subj: "/CN=Café  Ünï/O=Zoë", flags: []string{"-utf8"}, stringMask: "nombstr"},
		{name: "BMPString", subj: "/CN=Café CA/O=日本", flags: []string{"-utf8"}, stringMask: "pkix"},
		{name: "PrintableString", subj: "/C=DE/CN=Printable Only", stringMask: "default"},
		{name: "empty subject", subj: "/"},
		{name: "crafted empty SEQUENCE", raw: nameOf()},
		{name: "crafted whitespace-only value", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte(" \t "))))},
		{name: "crafted all whitespace kinds", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("\tA \n\v\f\rB\r\n"))))},
		{name: "crafted no-break space", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("\u00a0X\u00a0 Y"))))},
		{name: "crafted VisibleString", raw: nameOf(rdnOf(atvOf(oidCN, visibleT, []byte("  Visible   STR ")))), opensslRejects: true},
		{name: "crafted UniversalString", raw: nameOf(rdnOf(atvOf(oidCN, universalT, ucs4("AB Ü 😀 "))))},
		{name: "crafted BMPString", raw: nameOf(rdnOf(atvOf(oidCN, bmpT, bmp(" Ünï  CA "))))},
		{name: "crafted T61String high bytes", raw: nameOf(rdnOf(atvOf(oidCN, t61T, []byte("CAF\xc9 \xe9"))))},
		{name: "crafted IA5String high byte", raw: nameOf(rdnOf(atvOf(oidEmail, ia5T, []byte("A\xe9@B"))))},
		{name: "crafted PrintableString high byte", raw: nameOf(rdnOf(atvOf(oidCN, printableT, []byte("X\xe9Y"))))},
		{name: "crafted NumericString", raw: nameOf(rdnOf(atvOf(oidSN, numericT, []byte(" 12  3 "))))},
		{name: "crafted unsorted multi-valued RDN", raw: nameOf(rdnOf(atvOf(oidOU, utf8T, []byte("b")), atvOf(oidCN, printableT, []byte("B")), atvOf(oidCN, utf8T, []byte("a"))))},
		{name: "crafted empty RDN", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("a"))), rdnOf(), rdnOf(atvOf(oidO, utf8T, []byte("b"))))},
		{name: "crafted DC PrintableString", raw: nameOf(rdnOf(atvOf(oidDC, printableT, []byte("CPO"))))},
		{name: "crafted long values", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte(strings.Repeat("Long ", 60)))), rdnOf(atvOf(oidO, bmpT, bmp(strings.Repeat("Ab", 80)))))},
		{name: "crafted SEQUENCE value", raw: nameOf(rdnOf(atvOf(oidCN, 0x30, derTLV(utf8T, []byte(" X ")))))},
		{name: "crafted BIT STRING value", raw: nameOf(rdnOf(atvOf(oidCN, 0x03, []byte{0, 'A'})))},
		{name: "crafted OCTET STRING value", raw: nameOf(rdnOf(atvOf(oidCN, 0x04, []byte("A")))), opensslRejects: true},
		{name: "crafted context-specific value", raw: nameOf(rdnOf(atvOf(oidCN, 0x80, []byte("A")))), opensslRejects: true},
		{name: "crafted BMPString surrogate pair", raw: nameOf(rdnOf(atvOf(oidCN, bmpT, []byte{0, 'a', 0xd8, 0x3d, 0xde, 0x00})))},
		{name: "crafted UTF8String surrogate", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte{'a', 0xed, 0xa0, 0x80})))},
		{name: "crafted invalid UTF-8", raw: nameOf(rdnOf(atvOf(oidCN, utf8T, []byte{'a', 0xc3})))},
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte(pemOf("PRIVATE KEY", mustPKCS8(t, key))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mask := range []string{"default", "nombstr", "pkix"} {
		cnf := fmt.Sprintf("[req]\ndistinguished_name = dn\nstring_mask = %s\n[dn]\n", mask)
		if err := os.WriteFile(filepath.Join(dir, mask+".cnf"), []byte(cnf), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	certs := make(map[string]*x509.Certificate)
	for i, tt := range tests {
		file := fmt.Sprintf("c%d.pem", i)
		var raw []byte
		if tt.raw != nil {
			raw = tt.raw
			der := certWithRawSubject(t, key, raw)
			if err := os.WriteFile(filepath.Join(dir, file), []byte(pemOf("CERTIFICATE", der)), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			args := []string{"req", "-x509", "-key", "key.pem", "-subj", tt.subj, "-days", "1", "-out", file}
			if tt.stringMask != "" {
				args = append(args, "-config", tt.stringMask+".cnf")
			}
			runOpenSSL(t, dir, append(args, tt.flags...)...)
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := ParseCertificates(data)
			if err != nil || len(parsed) != 1 {
				t.Fatalf("%s: %d certificates, %v", tt.name, len(parsed), err)
			}
			certs[tt.name] = parsed[0]
			raw = parsed[0].RawSubject
		}

		out, sslErr := tryOpenSSL(t, dir, "x509", "-in", file, "-noout", "-subject_hash")
		got, err := NameHash(raw)
		switch {
		case tt.opensslRejects && sslErr != nil:
			// Nothing to compare: OpenSSL refuses this value type (crypto/x509 does too), and
			// CanonicalName follows its specification for it.
		case sslErr != nil && err == nil:
			t.Errorf("%s: openssl cannot load the certificate but NameHash = %08x (subject %x): %v", tt.name, got, raw, sslErr)
		case sslErr == nil && err != nil:
			t.Errorf("%s: NameHash: %v, but openssl prints %s", tt.name, err, out)
		case sslErr == nil:
			if want := strings.TrimSpace(string(out)); FormatNameHash(got) != want {
				t.Errorf("%s: NameHash = %s, openssl -subject_hash = %s (subject %x)", tt.name, FormatNameHash(got), want, raw)
			}
		}
	}

	// Names that differ only in case and spacing, or in the order inside a multi-valued RDN,
	// are one name to OpenSSL.
	for _, pair := range [][2]string{{"plain", "case and spacing"}, {"multi-valued RDN", "multi-valued RDN reordered"}} {
		a, b := certs[pair[0]], certs[pair[1]]
		if bytes.Equal(a.RawSubject, b.RawSubject) {
			t.Fatalf("%s and %s have byte-equal subjects", pair[0], pair[1])
		}
		if !NamesEqual(a.RawSubject, b.RawSubject) || SubjectHash(a) != SubjectHash(b) {
			t.Errorf("%s and %s: NamesEqual = false or hashes differ", pair[0], pair[1])
		}
	}
	if NamesEqual(certs["plain"].RawSubject, certs["T61String"].RawSubject) {
		t.Error("different names are equal")
	}

	// The reference fixtures too.
	for _, name := range []string{"SECC_LEAF_B.pem", "CPO_CERT_SECC_LEAF_CHAIN_B.pem"} {
		abs, err := filepath.Abs(filepath.Join("..", "testdata", "reference", "csms_certs", "client", name))
		if err != nil {
			t.Fatal(err)
		}
		c := readReferenceChain(t, name)[0]
		want := strings.TrimSpace(string(runOpenSSL(t, dir, "x509", "-in", abs, "-noout", "-subject_hash")))
		if got := FormatNameHash(SubjectHash(c)); got != want {
			t.Errorf("%s: SubjectHash = %s, openssl = %s", name, got, want)
		}
	}
}

// TestNamesEqualOpenSSLVerify uses `openssl verify` as the oracle for X509_NAME_cmp: a leaf whose
// issuer field is a differently encoded form of its CA's subject verifies exactly when OpenSSL
// considers the two names equal, and NamesEqual must say the same.
func TestNamesEqualOpenSSLVerify(t *testing.T) {
	requireTool(t, "openssl")
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name             string
		caSubject, issue []byte // the CA's subject and the leaf's issuer field
		want             bool
	}{
		{"case, spacing and string type",
			nameOf(rdnOf(atvOf(oidCN, printableT, []byte("Test CA"))), rdnOf(atvOf(oidO, printableT, []byte("ACME")))),
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("  test   ca "))), rdnOf(atvOf(oidO, utf8T, []byte("acme")))), true},
		{"BMPString and UTF8String",
			nameOf(rdnOf(atvOf(oidCN, bmpT, bmp("Café CA")))),
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("café ca")))), true},
		{"multi-valued RDN order",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("CA")), atvOf(oidOU, utf8T, []byte("PKI")))),
			nameOf(rdnOf(atvOf(oidOU, utf8T, []byte("pki")), atvOf(oidCN, utf8T, []byte("ca")))), true},
		{"non-ASCII case",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("CAFÉ CA")))),
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("café ca")))), false},
		{"other name",
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("Test CA")))),
			nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("Test CB")))), false},
		{"NumericString against PrintableString",
			nameOf(rdnOf(atvOf(oidSN, numericT, []byte("123")))),
			nameOf(rdnOf(atvOf(oidSN, printableT, []byte("123")))), false},
	}
	for i, tt := range tests {
		caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		caTmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			RawSubject:            tt.caSubject,
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign,
			SubjectKeyId:          []byte{1, 2, 3, 4},
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		// Sign the leaf with the CA's key but write the other encoding as its issuer.
		parent := *caTmpl
		parent.RawSubject = tt.issue
		leafTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2),
			RawSubject:   nameOf(rdnOf(atvOf(oidCN, utf8T, []byte("leaf")))),
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
		}
		leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, &parent, &leafKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		caFile, leafFile := fmt.Sprintf("ca%d.pem", i), fmt.Sprintf("leaf%d.pem", i)
		for file, der := range map[string][]byte{caFile: caDER, leafFile: leafDER} {
			if err := os.WriteFile(filepath.Join(dir, file), []byte(pemOf("CERTIFICATE", der)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		out, sslErr := tryOpenSSL(t, dir, "verify", "-CAfile", caFile, leafFile)
		linked := sslErr == nil
		if !linked && !strings.Contains(sslErr.Error(), "error 20 ") {
			t.Fatalf("%s: openssl verify failed for another reason than a missing issuer: %v", tt.name, sslErr)
		}
		if linked != tt.want {
			t.Fatalf("%s: test case is wrong: openssl verify linked=%v (%s%v)", tt.name, linked, out, sslErr)
		}
		if got := NamesEqual(tt.caSubject, tt.issue); got != linked {
			t.Errorf("%s: NamesEqual = %v, openssl links = %v", tt.name, got, linked)
		}
	}
}

// certWithRawSubject makes a self-signed certificate carrying raw as its subject and issuer,
// encoded exactly as given.
func certWithRawSubject(t testing.TB, key *ecdsa.PrivateKey, raw []byte) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		RawSubject:   raw,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("subject %x: %v", raw, err)
	}
	return der
}

func mustPKCS8(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func FuzzCanonicalName(f *testing.F) {
	f.Add(nameOf())
	f.Add(nameOf(rdnOf(atvOf(oidCN, printableT, []byte("  Foo   BAR  ")))))
	f.Add(nameOf(rdnOf(atvOf(oidOU, utf8T, []byte("b")), atvOf(oidCN, bmpT, bmp("Ä"))), rdnOf()))
	f.Add(nameOf(rdnOf(atvOf(oidCN, universalT, ucs4("x")), atvOf(oidSN, numericT, []byte("1")))))
	f.Add(nameOf(rdnOf(atvOf(oidCN, t61T, []byte{0xe9, ' ', ' ', 'A'}))))
	leaf, _ := hex.DecodeString("301f311d301b06035504030c1443504f20537562204e6578742043412032205632")
	f.Add(leaf)
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, raw []byte) {
		canon, err := CanonicalName(raw)
		h, herr := NameHash(raw)
		if (err == nil) != (herr == nil) {
			t.Fatalf("CanonicalName and NameHash disagree: %v, %v", err, herr)
		}
		if !NamesEqual(raw, raw) {
			t.Fatal("a name is not equal to itself")
		}
		if err != nil {
			return
		}
		again, err := CanonicalName(nameOf(canon))
		if err != nil || !bytes.Equal(again, canon) {
			t.Fatalf("canonical form %x is not a fixed point: %x, %v", canon, again, err)
		}
		if h2, _ := NameHash(nameOf(canon)); h2 != h {
			t.Fatalf("hash of the canonical form %08x, of the name %08x", h2, h)
		}
	})
}

func TestHeaderLen(t *testing.T) {
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000} {
		if got, want := headerLen(n), len(appendHeader(nil, cbasn1.SEQUENCE, n)); got != want {
			t.Errorf("headerLen(%#x) = %d, header is %d bytes", n, got, want)
		}
		if n < 0x10000 { // the header must decode to n
			raw := append(appendHeader(nil, cbasn1.SEQUENCE, n), make([]byte, n)...)
			if v, err := asn1.Unmarshal(raw, new(asn1.RawValue)); err != nil || len(v) != 0 {
				t.Errorf("header for %#x does not decode: %v", n, err)
			}
		}
	}
}
