package store

// Fuzz targets of the store's own parsers and input checks: update_ocsp_cache's input (hash
// data and the base64 response), the OCSP response parser, the CSR subject fields, the
// certificate files of bundles and leaf directories (and cutting one certificate out of them),
// key files of every format and the OCSP cache's .hash files. The committed corpus is in
// testdata/fuzz/; scripts/fuzz-ci.sh runs each target for a bounded time.

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/testpki"
)

// fuzzFastFS is the OS filesystem without fsync: fuzzing makes thousands of writes a second and
// does not test durability.
type fuzzFastFS struct{ OSFS }

func (fuzzFastFS) SyncDir(string) error { return nil }

func (f fuzzFastFS) CreateTemp(dir, pattern string) (File, error) {
	file, err := f.OSFS.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return fuzzNoSync{file}, nil
}

type fuzzNoSync struct{ File }

func (fuzzNoSync) Sync() error { return nil }

// fuzzStore is a store with the standard PKI installed, shared by the executions of one fuzz
// target in one process.
type fuzzStore struct {
	s    *Store
	p    *testpki.PKI
	root string
}

func fuzzNewStore(f *testing.F) *fuzzStore {
	f.Helper()
	p := tortureNewPKI(f)
	root := f.TempDir()
	cfg := DefaultConfig(root)
	cfg.MaxStoreEntries, cfg.MaxStoreBytes = 0, 0
	s, err := Open(cfg, Options{FS: fuzzFastFS{}})
	if err != nil {
		f.Fatal(err)
	}
	tortureInstallBase(f, s, p)
	return &fuzzStore{s: s, p: p, root: root}
}

// FuzzUpdateOCSPCache feeds update_ocsp_cache arbitrary hash data and responses. Only a real
// response for a stored certificate is accepted, and what is cached is then exactly its DER.
func FuzzUpdateOCSPCache(f *testing.F) {
	fs := fuzzNewStore(f)
	p := fs.p
	now := time.Now()
	secc := hashOf(f, p.SECCLeaf, p.CPOSubCA2)
	csms := hashOf(f, p.CSMSLeaf, p.CSMSRoot)
	sub := hashOf(f, p.CPOSubCA2, p.CPOSubCA1)
	good := tortureOCSP(f, p.SECCLeaf.Cert, p.CPOSubCA2, now, 1)
	goodCSMS := tortureOCSP(f, p.CSMSLeaf.Cert, p.CSMSRoot, now, 1)
	wrong := tortureOCSP(f, p.CSMSLeaf.Cert, p.CSMSRoot, now, 2)
	add := func(h certs.HashData, resp string) {
		f.Add(string(h.Algorithm), h.IssuerNameHash, h.IssuerKeyHash, h.SerialNumber, resp)
	}
	add(secc, certs.EncodeBase64(good))
	add(csms, certs.EncodeBase64(goodCSMS))
	add(secc, certs.EncodeBase64(wrong))
	add(sub, certs.EncodeBase64(good))
	b64 := certs.EncodeBase64(good)
	add(secc, b64[:len(b64)/2]+"\n"+b64[len(b64)/2:])
	add(secc, string(good))
	add(secc, "MAMKAQE=") // OCSPResponse{responseStatus: malformedRequest}
	add(secc, "")
	up := secc
	up.IssuerNameHash, up.SerialNumber = strings.ToUpper(up.IssuerNameHash), "00"+up.SerialNumber
	add(up, certs.EncodeBase64(good))
	add(certs.HashData{Algorithm: "SHA1", IssuerNameHash: "x", IssuerKeyHash: "y", SerialNumber: "z"}, "=")
	f.Fuzz(func(t *testing.T, alg, nameHash, keyHash, serial, resp string) {
		h := certs.HashData{Algorithm: certs.HashAlgorithm(alg), IssuerNameHash: nameHash, IssuerKeyHash: keyHash, SerialNumber: serial}
		err := fs.s.UpdateOCSPCache(h, resp)
		if err != nil {
			return
		}
		der, derr := certs.DecodeBase64(resp)
		if derr != nil {
			t.Fatalf("accepted a response that is not base64: %v", derr)
		}
		// The response is now the cached one of the certificate h names.
		for _, c := range []struct {
			cert   *x509.Certificate
			issuer *x509.Certificate
		}{{p.SECCLeaf.Cert, p.CPOSubCA2.Cert}, {p.CSMSLeaf.Cert, p.CSMSRoot.Cert}} {
			ch, _ := certs.ComputeHashData(c.cert, c.issuer, h.Algorithm)
			if !ch.Equal(h) {
				continue
			}
			sh, _ := certs.ComputeHashData(c.cert, c.issuer, certs.SHA256)
			if got := tortureOCSPOf(fs.s, c.cert, sh); !bytes.Equal(got, der) {
				t.Fatalf("accepted, but the cache holds %d other bytes", len(got))
			}
			return
		}
		// A CA's response (none of the seeds is one) must at least be a real response.
		if _, err := parseHashFile(formatHashFile(h)); err != nil {
			t.Fatalf("accepted hash data whose .hash file does not parse back: %v", err)
		}
	})
}

// FuzzCSRFields feeds generate_certificate_signing_request arbitrary subject fields. Bad input
// is rejected with GenerationError; accepted input comes back in the CSR exactly as given (no
// field dropped or changed), the CSR is signed by a 0600 key file of the store.
func FuzzCSRFields(f *testing.F) {
	fs := fuzzNewStore(f)
	for _, s := range [][3]string{
		{"DE", "Pionix", "SECC"}, {"de", "Ö", "ü"}, {"D", "O", "CN"}, {"DEU", "O", "CN"}, {"DE", "", "CN"},
		{"DE", "O\x00", "CN"}, {"DE", strings.Repeat("x", 64), strings.Repeat("y", 65)}, {"DE", "\xff", "CN"},
		{"1E", "O", "CN"}, {"DE", "O", "CN\n-----BEGIN CERTIFICATE-----"}, {"DE", "日本語", "🚗"},
	} {
		f.Add(s[0], s[1], s[2], true)
		f.Add(s[0], s[1], s[2], false)
	}
	var mu sync.Mutex
	f.Fuzz(func(t *testing.T, country, org, cn string, v2g bool) {
		lt := LeafCSMS
		if v2g {
			lt = LeafV2G
		}
		res := fs.s.GenerateCSR(lt, country, org, cn, false)
		valid := checkSubjectInput(country, org, cn) == nil
		if !valid {
			if res.Status != CSRGenerationError || res.CSR != "" {
				t.Fatalf("bad subject (%q, %q, %q) gave %s", country, org, cn, res.Status)
			}
			return
		}
		if res.Status != CSRAccepted {
			t.Fatalf("valid subject (%q, %q, %q) gave %s", country, org, cn, res.Status)
		}
		blk, _ := pem.Decode([]byte(res.CSR))
		if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
			t.Fatal("the CSR is not one PEM CERTIFICATE REQUEST")
		}
		csr, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("CSR signature: %v", err)
		}
		want := map[string]string{"2.5.4.6": country, "2.5.4.10": org, "2.5.4.3": cn}
		if lt == LeafV2G {
			want["0.9.2342.19200300.100.1.25"] = "CPO"
		}
		var rdns []attributeSET
		if rest, err := asn1.Unmarshal(csr.RawSubject, &rdns); err != nil || len(rest) > 0 {
			t.Fatalf("subject does not parse: %v", err)
		}
		got := map[string]string{}
		for _, rdn := range rdns {
			for _, a := range rdn {
				got[a.Type.String()] = string(a.Value.Bytes)
			}
		}
		for oid, v := range want {
			if got[oid] != v {
				t.Fatalf("subject %s = %q, want %q", oid, got[oid], v)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("subject has %d attributes, want %d", len(got), len(want))
		}
		// The key: 0600, and the CSR's. Then remove it, so the directory stays small.
		mu.Lock()
		defer mu.Unlock()
		_, keyDir, _ := fs.s.cfg.LeafDirs(lt)
		for _, k := range fs.s.listKeys(keyDir) {
			if k.err != nil || k.fp != keys.Fingerprint(csr.PublicKey) {
				continue
			}
			fi, err := os.Stat(k.path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file %s: mode %v, %v", k.path, fi.Mode().Perm(), err)
			}
			os.Remove(k.path)
			fs.s.pending.remove(k.path)
			return
		}
		t.Fatal("no key file matches the CSR")
	})
}

// FuzzCertFile feeds the store's certificate file reader arbitrary bytes (a bundle file or a file
// of a leaf directory), and cuts each certificate out of what parses: the other certificates and
// every byte outside the cut block stay.
func FuzzCertFile(f *testing.F) {
	p := tortureNewPKI(f)
	f.Add(testpki.CertsPEM(p.V2GRoot, p.CPOSubCA1, p.CPOSubCA2), uint8(1))
	f.Add(append([]byte("# bundle\r\nsubject=V2G\r\n"), testpki.CertsPEM(p.V2GRoot, p.MORoot)...), uint8(0))
	f.Add(append(append([]byte{}, p.V2GRoot.Cert.Raw...), p.MORoot.Cert.Raw...), uint8(1))
	f.Add(p.SECCLeaf.ChainPEM(), uint8(2))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"), uint8(0))
	if ref, err := os.ReadFile(filepath.Join("..", "testdata", "reference", "csms_certs", "client", "CPO_CERT_SECC_LEAF_CHAIN_B.pem")); err == nil {
		f.Add(ref, uint8(1))
	}
	dir := f.TempDir()
	var mu sync.Mutex
	n := 0
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		cf := parseCertFile("fuzz.pem", data)
		if cf.err != nil || len(cf.certs) == 0 {
			return
		}
		if cf.blocks != nil && len(cf.blocks) != len(cf.certs) {
			t.Fatalf("%d blocks for %d certificates", len(cf.blocks), len(cf.certs))
		}
		mu.Lock()
		n++
		path := filepath.Join(dir, "b"+strings.Repeat("x", n%3)+".pem")
		mu.Unlock()
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cf.path = path
		i := int(k) % len(cf.certs)
		target := certs.FingerprintOf(cf.certs[i])
		s := &Store{fs: fuzzFastFS{}}
		removed, err := s.removeFromFile(cf, map[certs.Fingerprint]bool{target: true}, true)
		if err != nil {
			t.Fatal(err)
		}
		if !removed {
			t.Fatal("the certificate was not cut out")
		}
		out, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			for _, c := range cf.certs {
				if certs.FingerprintOf(c) != target {
					t.Fatal("the file was removed but held another certificate")
				}
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var want []*x509.Certificate
		for _, c := range cf.certs {
			if certs.FingerprintOf(c) != target {
				want = append(want, c)
			}
		}
		got, err := certs.ParseCertificates(out)
		if err != nil || len(got) != len(want) {
			t.Fatalf("after the cut: %d certificates, want %d (%v)", len(got), len(want), err)
		}
		for j := range want {
			if !bytes.Equal(got[j].Raw, want[j].Raw) {
				t.Fatalf("certificate %d changed", j)
			}
		}
		if cf.blocks != nil {
			// Every byte outside the removed blocks is kept, in order.
			var keep []byte
			last := 0
			for _, b := range cf.blocks {
				if certs.FingerprintOf(b.Cert) == target {
					keep = append(keep, data[last:b.Start]...)
					last = b.End
				}
			}
			keep = append(keep, data[last:]...)
			if !bytes.Equal(out, keep) {
				t.Fatal("bytes outside the cut block changed")
			}
		}
		os.Remove(path)
	})
}

// FuzzKeyFile feeds the store's key file reader (every backend's format: PKCS#8 plain and
// encrypted, SEC1, PKCS#1, legacy encrypted PEM, DER, TPM key files, PKCS#11 URIs) arbitrary
// bytes and passwords: it never panics, and a key it reads is one the file backend signs with.
func FuzzKeyFile(f *testing.F) {
	p := tortureNewPKI(f)
	plain, _ := p.SECCLeaf.KeyPEM("")
	legacy, _ := p.SECCLeaf.KeyPEM("secret")
	enc, err := keys.MarshalPEM(p.CSMSLeaf.Key, []byte("secret"))
	if err != nil {
		f.Fatal(err)
	}
	blk, _ := pem.Decode(plain)
	for _, seed := range [][]byte{plain, legacy, enc, blk.Bytes, []byte("pkcs11:token=evsesec;object=csms-1"),
		[]byte("-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"), nil} {
		f.Add(seed, "secret")
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		kb := openKeyBackends(Config{PrivateKeyPassword: password, TPMDevice: "/nonexistent/evsesec-fuzz-tpm"})
		pub, err := kb.PublicKey(data)
		if err != nil {
			return
		}
		if keys.Fingerprint(pub) == "" {
			t.Fatalf("read a key with no fingerprint: %T", pub)
		}
		if keys.KindOf(data) != keys.KindFile {
			return
		}
		signer, err := kb.Signer(data)
		if err != nil {
			t.Fatalf("the public key reads but the key does not open: %v", err)
		}
		if !keys.PublicKeysEqual(signer.Public(), pub) {
			t.Fatal("the signer's public key is not the one read")
		}
	})
}

// FuzzParseHashFile feeds the OCSP cache's .hash reader arbitrary bytes: what it reads writes
// back to a file that reads the same.
func FuzzParseHashFile(f *testing.F) {
	f.Add([]byte("SHA256\nabcdef\n012345\n1f\n"))
	f.Add([]byte("SHA512 a b c"))
	f.Add([]byte("SHA256\r\nA\r\nB\r\n00\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHashFile(data)
		if err != nil {
			return
		}
		again, err := parseHashFile(formatHashFile(h))
		if err != nil {
			t.Fatalf("written back, it does not read: %v", err)
		}
		if !again.Equal(h) {
			t.Fatalf("read %+v, wrote back %+v", h, again)
		}
	})
}
