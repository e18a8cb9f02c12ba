package tlsconf

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// trustedAuthority is one entry of a trusted_ca_keys extension.
type trustedAuthority struct {
	kind uint8
	id   []byte
}

func keyHash(c *x509.Certificate) trustedAuthority {
	return trustedAuthority{caKeySHA1, sha1Of(publicKeyHashInputs(c)[0])}
}
func certHash(c *x509.Certificate) trustedAuthority {
	return trustedAuthority{caCertSHA1, sha1Of(c.Raw)}
}
func x509Name(c *x509.Certificate) trustedAuthority {
	return trustedAuthority{caX509Name, c.RawSubject}
}

func sha1Of(b []byte) []byte {
	h := sha1.Sum(b)
	return h[:]
}

// helloOptions are the CA indications of a crafted ClientHello.
type helloOptions struct {
	trusted []trustedAuthority // trusted_ca_keys; nil leaves the extension out
	cas     [][]byte           // certificate_authorities names; nil leaves it out
}

// clientHello builds a TLS 1.2 ClientHello message (with its handshake header) that a Go server
// accepts: ECDHE-ECDSA-AES128-SHA256 on P-256 with ECDSA-SHA256 signatures, plus the CA
// indications of o.
func clientHello(t testing.TB, o helloOptions) []byte {
	t.Helper()
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	ext := func(b *cryptobyte.Builder, typ uint16, body func(*cryptobyte.Builder)) {
		b.AddUint16(typ)
		b.AddUint16LengthPrefixed(body)
	}
	var b cryptobyte.Builder
	b.AddUint8(typeHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(tls.VersionTLS12)
		b.AddBytes(random)
		b.AddUint8(0) // no session id
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256) })
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // null compression
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			ext(b, 10, func(b *cryptobyte.Builder) { // supported_groups: secp256r1
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(tls.CurveP256)) })
			})
			ext(b, 11, func(b *cryptobyte.Builder) { // ec_point_formats: uncompressed
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
			})
			ext(b, 13, func(b *cryptobyte.Builder) { // signature_algorithms
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(uint16(tls.ECDSAWithP256AndSHA256)) })
			})
			if o.trusted != nil {
				ext(b, extTrustedCAKeys, func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						for _, a := range o.trusted {
							b.AddUint8(a.kind)
							switch a.kind {
							case caX509Name:
								b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.id) })
							default:
								b.AddBytes(a.id)
							}
						}
					})
				})
			}
			if o.cas != nil {
				ext(b, extCertificateAuthorities, func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						for _, n := range o.cas {
							b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(n) })
						}
					})
				})
			}
		})
	})
	return b.BytesOrPanic()
}

// records splits a handshake message into TLS records of at most size bytes of payload.
func records(msg []byte, size int) []byte {
	var out []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		out = append(out, typeHandshake, 3, 1, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out
}

// recordedConn returns a helloConn that has read data (in reads of chunk bytes).
func recordedConn(t testing.TB, data []byte, chunk int) net.Conn {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	go func() {
		_, _ = client.Write(data)
		client.Close()
	}()
	hc := NewHelloConn(server)
	buf := make([]byte, chunk)
	for {
		if _, err := hc.Read(buf); err != nil {
			if err != io.EOF {
				t.Fatal(err)
			}
			return hc
		}
	}
}

func TestHelloConnRecordsClientHello(t *testing.T) {
	root := standardPKI(t).V2GRoot.Cert
	msg := clientHello(t, helloOptions{trusted: []trustedAuthority{keyHash(root)}})
	tests := []struct {
		name    string
		data    []byte
		chunk   int
		wantKey bool
	}{
		{"one record", records(msg, 1<<14), 4096, true},
		{"one byte a read", records(msg, 1<<14), 1, true},
		{"fragmented over records", records(msg, 7), 3, true},
		{"followed by more data", append(records(msg, 1<<14), 23, 3, 3, 0, 1, 0), 4096, true},
		{"not TLS", []byte("GET / HTTP/1.1\r\n\r\n"), 4096, false},
		{"truncated", records(msg, 1<<14)[:40], 4096, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ind := indicationsOf(recordedConn(t, tc.data, tc.chunk))
			if got := len(ind.keySHA1) == 1; got != tc.wantKey {
				t.Fatalf("recorded key hashes %d, want the one sent: %v", len(ind.keySHA1), tc.wantKey)
			}
		})
	}
}

func TestParseClientHello(t *testing.T) {
	p := standardPKI(t)
	root := p.V2GRoot.Cert
	msg := clientHello(t, helloOptions{
		trusted: []trustedAuthority{{caPreAgreed, nil}, keyHash(root), certHash(root), x509Name(root)},
		cas:     [][]byte{p.MORoot.Cert.RawSubject},
	})
	ci, err := parseClientHello(msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ci.keySHA1) != 1 || len(ci.certSHA1) != 1 || len(ci.names) != 2 {
		t.Fatalf("parsed %d key hashes, %d cert hashes, %d names; want 1, 1, 2", len(ci.keySHA1), len(ci.certSHA1), len(ci.names))
	}
	if !ci.match(newCAID(root)) || !ci.match(newCAID(p.MORoot.Cert)) || ci.match(newCAID(p.CSMSRoot.Cert)) {
		t.Error("matching is wrong")
	}
	// Every truncation is an error or a subset, never a panic.
	for i := range msg {
		_, _ = parseClientHello(msg[:i])
	}
	bad := clientHello(t, helloOptions{trusted: []trustedAuthority{{9, nil}}})
	if _, err := parseClientHello(bad); err == nil {
		t.Error("unknown identifier type accepted")
	}
}

func FuzzParseClientHello(f *testing.F) {
	root := standardPKI(f).V2GRoot.Cert
	f.Add(clientHello(f, helloOptions{}))
	f.Add(clientHello(f, helloOptions{trusted: []trustedAuthority{keyHash(root), x509Name(root)}, cas: [][]byte{root.RawSubject}}))
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = parseClientHello(msg)
	})
}

// twoRoots adds a second V2G root with its own CPO sub-CA and a SECC leaf under it that is newer
// than the standard one. It returns the second root and the new leaf.
func twoRoots(t *testing.T, f *fixture) (*testpki.Issued, *x509.Certificate) {
	t.Helper()
	root2, err := testpki.SelfSigned(testpki.Spec{CommonName: "V2GRootCA2", DomainComponent: "V2G", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := root2.Issue(testpki.Spec{CommonName: "CPOSubCA2b", DomainComponent: "V2G", IsCA: true, MaxPathLen: 0})
	if err != nil {
		t.Fatal(err)
	}
	if res := f.st.InstallCACertificate(string(root2.CertPEM()), store.CAV2G); res != store.InstallAccepted {
		t.Fatalf("InstallCACertificate: %s", res)
	}
	leaf := installLeaf(t, f.st, store.LeafV2G, sub, time.Now().AddDate(testpki.LeafValidityYears+1, 0, 0))
	return root2, leaf
}

// A car that names the V2G roots it trusts gets the leaf under one of them; a car that names
// none, or only unknown ones, gets the newest.
func TestSECCServerHonoursTrustedCAIndications(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	root2, leaf2 := twoRoots(t, f)
	root1, leaf1 := f.pki.V2GRoot.Cert, f.pki.SECCLeaf.Cert
	cfg, err := SECCServerConfig(f.st, SECCOptions{Events: f.events})
	if err != nil {
		t.Fatal(err)
	}
	unknown := f.pki.MORoot.Cert
	tests := []struct {
		name string
		o    helloOptions
		want *x509.Certificate
	}{
		{"no indication", helloOptions{}, leaf2},
		{"key hash of root 1", helloOptions{trusted: []trustedAuthority{keyHash(root1)}}, leaf1},
		{"cert hash of root 1", helloOptions{trusted: []trustedAuthority{certHash(root1)}}, leaf1},
		{"name of root 1", helloOptions{trusted: []trustedAuthority{x509Name(root1)}}, leaf1},
		{"key hash of a CPO sub-CA under root 1", helloOptions{trusted: []trustedAuthority{keyHash(f.pki.CPOSubCA1.Cert)}}, leaf1},
		{"both roots", helloOptions{trusted: []trustedAuthority{keyHash(root1), keyHash(root2.Cert)}}, leaf2},
		{"root 2", helloOptions{trusted: []trustedAuthority{certHash(root2.Cert)}}, leaf2},
		{"unknown root", helloOptions{trusted: []trustedAuthority{keyHash(unknown)}}, leaf2},
		{"pre-agreed only", helloOptions{trusted: []trustedAuthority{{caPreAgreed, nil}}}, leaf2},
		{"TLS 1.3 certificate_authorities", helloOptions{cas: [][]byte{root1.RawSubject}}, leaf1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := recordedConn(t, records(clientHello(t, tc.o), 1<<14), 4096)
			c, err := cfg.GetCertificate(&tls.ClientHelloInfo{Conn: conn})
			if err != nil {
				t.Fatal(err)
			}
			if !c.Leaf.Equal(tc.want) {
				t.Errorf("served serial %x, want %x", c.Leaf.SerialNumber, tc.want.SerialNumber)
			}
		})
	}
}

// Over the wire: a raw ClientHello with trusted_ca_keys naming root 1 gets root 1's chain in the
// server's Certificate message (TLS 1.2 sends it in the clear), through NewHelloListener.
func TestSECCServerTrustedCAKeysOverTheWire(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	twoRoots(t, f)
	cfg, err := SECCServerConfig(f.st, SECCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tln := tls.NewListener(NewHelloListener(ln), cfg)
	t.Cleanup(func() { tln.Close() })
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	hello := clientHello(t, helloOptions{trusted: []trustedAuthority{keyHash(f.pki.V2GRoot.Cert)}})
	if _, err := c.Write(records(hello, 1<<14)); err != nil {
		t.Fatal(err)
	}
	chain := readServerCertificates(t, c)
	if !sameChain(chain, f.pki.SECCLeaf.Cert, f.pki.CPOSubCA2.Cert, f.pki.CPOSubCA1.Cert) {
		t.Errorf("server sent %d certificates, want the chain under root 1", len(chain))
	}
}

// readServerCertificates reads a TLS 1.2 server flight up to its Certificate message and returns
// the certificates in it.
func readServerCertificates(t *testing.T, c net.Conn) [][]byte {
	t.Helper()
	var hs []byte
	for {
		hdr := make([]byte, 5)
		if _, err := io.ReadFull(c, hdr); err != nil {
			t.Fatalf("reading the server's flight: %v", err)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[3:]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		if hdr[0] != typeHandshake {
			t.Fatalf("server sent record type %d (%x)", hdr[0], body)
		}
		hs = append(hs, body...)
		for len(hs) >= 4 {
			n := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
			if len(hs) < 4+n {
				break
			}
			typ, msg := hs[0], cryptobyte.String(hs[4:4+n])
			hs = hs[4+n:]
			if typ != 11 { // Certificate
				continue
			}
			var list cryptobyte.String
			if !msg.ReadUint24LengthPrefixed(&list) {
				t.Fatal("malformed Certificate message")
			}
			var out [][]byte
			for !list.Empty() {
				var der cryptobyte.String
				if !list.ReadUint24LengthPrefixed(&der) {
					t.Fatal("malformed Certificate entry")
				}
				out = append(out, der)
			}
			return out
		}
	}
}
