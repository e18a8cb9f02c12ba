package store_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
)

// ISO 15118-20 SECC leaves (V2G20) beside ISO 15118-2 ones (V2G), with OpenSSL making the -20
// CA chain, keys and certificates, as a CPO's PKI would.

// osslCA20 is a CA made by the OpenSSL CLI: its files in dir.
type osslCA20 struct {
	cert, key string
	x509      *x509.Certificate
}

const ocspURL20 = "http://127.0.0.1:8888/"

// osslRoot20 makes a self-signed P-521 V2G root signed with SHA-512.
func osslRoot20(t *testing.T, dir, name string) *osslCA20 {
	t.Helper()
	ca := &osslCA20{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+".key")}
	runOpenSSL(t, nil, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes",
		"-keyout", ca.key, "-out", ca.cert, "-days", "3650", "-sha512",
		"-subj", "/C=DE/O=EVerest test/CN="+name+"/DC=V2G",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	ca.x509 = fileCerts(t, ca.cert)[0]
	return ca
}

// osslSign signs the CSR file csr with ca through `openssl x509 -req`, with the extensions ext
// (OpenSSL config lines) and digest, and returns the certificate's path.
func osslSign(t *testing.T, dir string, ca *osslCA20, csr, name, digest string, ext ...string) string {
	t.Helper()
	extFile := filepath.Join(dir, name+".ext")
	writeFile(t, extFile, []byte("[v3]\n"+strings.Join(ext, "\n")+"\n"), 0o644)
	out := filepath.Join(dir, name+".pem")
	runOpenSSL(t, nil, "x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", "0x"+randomHex(t),
		"-days", "365", "-"+digest, "-extfile", extFile, "-extensions", "v3", "-out", out)
	return out
}

// afterOpenSSL moves the store's clock past the notBefore (the wall clock) of what OpenSSL just
// made: the test clock starts at the whole second before the test.
func (e *env) afterOpenSSL() {
	e.clock.Set(time.Now().UTC().Add(5 * time.Second))
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] = b[0]&0x7f | 0x10
	return hex.EncodeToString(b)
}

// osslSubCA20 makes a P-521 CPO sub-CA under ca with an OCSP URL.
func osslSubCA20(t *testing.T, dir string, ca *osslCA20, name string, pathLen int) *osslCA20 {
	t.Helper()
	sub := &osslCA20{key: filepath.Join(dir, name+".key")}
	csr := filepath.Join(dir, name+".csr")
	runOpenSSL(t, nil, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes",
		"-keyout", sub.key, "-out", csr, "-subj", "/C=DE/O=EVerest test/CN="+name+"/DC=V2G")
	sub.cert = osslSign(t, dir, ca, csr, name, "sha512",
		"basicConstraints=critical,CA:TRUE,pathlen:"+strconv.Itoa(pathLen), "keyUsage=critical,keyCertSign,cRLSign",
		"subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid", "authorityInfoAccess=OCSP;URI:"+ocspURL20)
	sub.x509 = fileCerts(t, sub.cert)[0]
	return sub
}

// leafExt20 are the extensions of an Annex B SECC leaf.
var leafExt20 = []string{"basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
	"subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid", "authorityInfoAccess=OCSP;URI:" + ocspURL20}

// pki20 is an OpenSSL-made -20 chain installed into e's V2G domain: root (in the bundle) → CPO
// sub-CA 1 → CPO sub-CA 2.
type pki20 struct {
	dir              string
	root, sub1, sub2 *osslCA20
}

func newPKI20(t *testing.T, e *env) *pki20 {
	t.Helper()
	requireTool(t, "openssl")
	p := &pki20{dir: t.TempDir()}
	p.root = osslRoot20(t, p.dir, "V2G20RootOSSL")
	p.sub1 = osslSubCA20(t, p.dir, p.root, "CPO20Sub1OSSL", 1)
	p.sub2 = osslSubCA20(t, p.dir, p.sub1, "CPO20Sub2OSSL", 0)
	if r := e.s.InstallCACertificate(string(readFile(t, p.root.cert)), store.CAV2G); r != store.InstallAccepted {
		t.Fatalf("install the -20 root: %s", r)
	}
	return p
}

// chain is leaf + sub-CA 2 + sub-CA 1, the form update_leaf_certificate gets.
func (p *pki20) chain(t *testing.T, leafPath string) string {
	t.Helper()
	return string(readFile(t, leafPath)) + string(readFile(t, p.sub2.cert)) + string(readFile(t, p.sub1.cert))
}

// The whole way of a -20 leaf with OpenSSL on the CA side: the store's V2G20 CSR (P-521, DC=CSO,
// digitalSignature), `openssl x509 -req` signs it, update_leaf_certificate(V2G20) installs it; and
// a key and CSR made by `openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-521`, the key put
// into the key directory by hand. Each query type then selects its own kind: V2G still the -2
// leaf of the layout, V2G20 the newest -20 leaf.
func TestV2G20OpenSSLChainCSRInstallSelect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := newPKI20(t, e)
	before2 := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true)

	// 1. The store's CSR.
	res := e.s.GenerateCSR(store.LeafV2G20, "DE", "EVerest test", "SECC20CSR", false)
	if res.Status != store.CSRAccepted {
		t.Fatalf("V2G20 CSR: %s", res.Status)
	}
	csr := parseCSR(t, res.CSR)
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P521() || csr.SignatureAlgorithm != x509.ECDSAWithSHA512 {
		t.Fatalf("CSR key %T signed with %v, want P-521 with ECDSA-SHA512", csr.PublicKey, csr.SignatureAlgorithm)
	}
	if !certs.HasIA5Attribute(csr.RawSubject, certs.OIDDomainComponent, "CSO") {
		t.Errorf("CSR subject %s lacks DC=CSO", certs.NameString(csr.RawSubject))
	}
	text := runOpenSSL(t, []byte(res.CSR), "req", "-noout", "-text", "-verify")
	if !strings.Contains(text, "Digital Signature") || strings.Contains(text, "Key Agreement") {
		t.Errorf("CSR key usage is not digitalSignature alone:\n%s", text)
	}
	csrPath := filepath.Join(p.dir, "store.csr")
	writeFile(t, csrPath, []byte(res.CSR), 0o644)
	leafA := osslSign(t, p.dir, p.sub2, csrPath, "leafA", "sha512", leafExt20...)
	e.afterOpenSSL()
	if r := e.s.UpdateLeafCertificate(p.chain(t, leafA), store.LeafV2G20); r != store.InstallAccepted {
		t.Fatalf("install the -20 leaf of the store's CSR: %s\n%s", r, e.logs)
	}
	got := e.s.GetLeafCertificateInfo(store.LeafV2G20, store.EncodingPEM, false)
	if got.Status != store.InfoAccepted || !fileCerts(t, got.Info.CertificateSingle)[0].Equal(fileCerts(t, leafA)[0]) {
		t.Fatalf("V2G20 info %+v, want the installed -20 leaf", got)
	}
	if got.Info.CertificateCount != 3 || !strings.Contains(got.Info.CertificateRoot, strings.TrimSpace(string(readFile(t, p.root.cert)))[30:90]) {
		t.Errorf("V2G20 chain count %d, root %q", got.Info.CertificateCount, got.Info.CertificateRoot)
	}
	requireMode(t, got.Info.Key, 0o600)

	// 2. OpenSSL's own key and CSR; the key goes into the key directory by hand.
	keyPath := e.path("client/cso/SECC20_OSSL.key")
	csr2 := filepath.Join(p.dir, "ossl.csr")
	runOpenSSL(t, nil, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521", "-nodes",
		"-keyout", keyPath, "-out", csr2, "-subj", "/C=DE/O=EVerest test/CN=SECC20OSSL/DC=CSO")
	if err := os.Chmod(keyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // a later notAfter than leaf A's
	leafB := osslSign(t, p.dir, p.sub2, csr2, "leafB", "sha512", leafExt20...)
	e.afterOpenSSL()
	// A later notAfter makes it the newest.
	if r := e.s.UpdateLeafCertificate(p.chain(t, leafB), store.LeafV2G20); r != store.InstallAccepted {
		t.Fatalf("install the -20 leaf of OpenSSL's key: %s\n%s", r, e.logs)
	}
	got = e.s.GetLeafCertificateInfo(store.LeafV2G20, store.EncodingPEM, false)
	newest := fileCerts(t, leafB)[0]
	if fileCerts(t, leafA)[0].NotAfter.After(newest.NotAfter) {
		newest = fileCerts(t, leafA)[0]
	}
	if got.Status != store.InfoAccepted || !fileCerts(t, got.Info.CertificateSingle)[0].Equal(newest) {
		t.Fatalf("V2G20 info after the second leaf: %+v", got)
	}
	if got.Info.Key != keyPath && fileCerts(t, got.Info.CertificateSingle)[0].Equal(fileCerts(t, leafB)[0]) {
		t.Errorf("key %s, want OpenSSL's key %s", got.Info.Key, keyPath)
	}

	// The -2 side is untouched: same answer as before, the layout's P-256 leaf.
	after2 := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true)
	if after2.Status != store.InfoAccepted || after2.Info.CertificateSingle != before2.Info.CertificateSingle ||
		after2.Info.Certificate != before2.Info.Certificate || after2.Info.Key != before2.Info.Key {
		t.Fatalf("V2G answer changed: before %+v after %+v", before2.Info, after2.Info)
	}
	all20 := e.s.GetAllValidCertificatesInfo(store.LeafV2G20, store.EncodingPEM, false)
	if all20.Status != store.InfoAccepted || len(all20.Info) != 1 {
		t.Fatalf("all valid V2G20: %+v (one root, one leaf)", all20)
	}
	all2 := e.s.GetAllValidCertificatesInfo(store.LeafV2G, store.EncodingPEM, false)
	for _, in := range all2.Info {
		if k, ok := fileCerts(t, in.CertificateSingle)[0].PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Errorf("V2G answered a leaf with key %T", fileCerts(t, in.CertificateSingle)[0].PublicKey)
		}
	}
	if d := e.s.GetLeafExpiryDaysCount(store.LeafV2G20); d < 363 || d > 365 {
		t.Errorf("V2G20 expiry days %d, want about 365", d)
	}
	// OpenSSL agrees the installed chain file verifies against the V2G bundle.
	runOpenSSL(t, nil, "verify", "-CAfile", e.layout.V2GBundle, "-untrusted", got.Info.Certificate, got.Info.CertificateSingle)

	// Events name V2G20.
	var sawV2G20 bool
	for _, ev := range e.events.take() {
		if ev.LeafType == store.LeafV2G20 && ev.Operation == store.OperationInstalled {
			sawV2G20 = true
		}
		if ev.LeafType == store.LeafV2G {
			t.Errorf("a -20 install reported as V2G: %+v", ev)
		}
	}
	if !sawV2G20 {
		t.Error("no Installed event of type V2G20")
	}
}

// Each profile refuses what does not fit it, with the result code and the reason logged, and
// nothing changes on disk.
func TestV2G20ProfileRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := newPKI20(t, e)
	leafWith := func(name, subj, digest string, keyArgs []string, ext ...string) string {
		key := e.path("client/cso/" + name + ".key")
		csr := filepath.Join(p.dir, name+".csr")
		runOpenSSL(t, nil, append(append([]string{"req", "-new"}, keyArgs...), "-nodes", "-keyout", key, "-out", csr, "-subj", subj)...)
		return p.chain(t, osslSign(t, p.dir, p.sub2, csr, name, digest, ext...))
	}
	p521 := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"}
	p256 := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}
	good := leafWith("good", "/C=DE/O=EVerest test/CN=Good20/DC=CSO", "sha512", p521, leafExt20...)
	noDC := leafWith("nodc", "/C=DE/O=EVerest test/CN=NoDC20", "sha512", p521, leafExt20...)
	sha256 := leafWith("sha256", "/C=DE/O=EVerest test/CN=Sha256/DC=CSO", "sha256", p521, leafExt20...)
	kaOnly := leafWith("kaonly", "/C=DE/O=EVerest test/CN=KAOnly/DC=CSO", "sha512", p521,
		"basicConstraints=critical,CA:FALSE", "keyUsage=critical,keyAgreement", "authorityKeyIdentifier=keyid")
	small := leafWith("p256", "/C=DE/O=EVerest test/CN=P256As20/DC=CPO", "sha512", p256, leafExt20...)
	cases := []struct {
		name   string
		chain  string
		lt     store.LeafType
		want   store.InstallResult
		reason string
	}{
		{"-20 leaf offered as V2G", good, store.LeafV2G, store.InstallInvalidFormat, "install it as V2G20"},
		{"-2 (P-256) leaf offered as V2G20", small, store.LeafV2G20, store.InstallInvalidFormat, "ISO 15118-2 (V2G) leaf"},
		{"no DC", noDC, store.LeafV2G20, store.InstallInvalidCommonName, "subject has no DC=CSO or DC=CPO"},
		{"signed with SHA-256", sha256, store.LeafV2G20, store.InstallInvalidFormat, "signed with ECDSA-SHA256"},
		{"keyAgreement without digitalSignature", kaOnly, store.LeafV2G20, store.InstallInvalidFormat, "key usage must include digitalSignature"},
	}
	if _, err := tryOpenSSL(t, nil, "genpkey", "-algorithm", "ed448", "-out", filepath.Join(p.dir, "probe.key")); err == nil {
		ed := leafWith("ed448", "/C=DE/O=EVerest test/CN=Ed448Leaf/DC=CSO", "sha512", []string{"-newkey", "ed448"}, leafExt20...)
		cases = append(cases, struct {
			name   string
			chain  string
			lt     store.LeafType
			want   store.InstallResult
			reason string
		}{"Ed448 leaf", ed, store.LeafV2G20, store.InstallInvalidFormat, "Ed448 keys are not supported"})
	}
	e.afterOpenSSL()
	before := snapshot(t, e.root)
	e.events.take()
	for _, c := range cases {
		e.logs.Reset()
		if got := e.s.UpdateLeafCertificate(c.chain, c.lt); got != c.want {
			t.Errorf("%s: %s, want %s\n%s", c.name, got, c.want, e.logs)
			continue
		}
		if !strings.Contains(e.logs.String(), c.reason) {
			t.Errorf("%s: the log does not name the reason %q:\n%s", c.name, c.reason, e.logs)
		}
		requireUnchanged(t, e.root, before, c.name)
	}
	if ev := e.events.take(); len(ev) != 0 {
		t.Errorf("refused installs sent events %+v", ev)
	}
	// An Ed448 leaf placed by hand is listed (Go parses the certificate, not the key) but never
	// selected.
	if ed := e.path("client/cso/ED448_BY_HAND.pem"); len(cases) == 6 {
		writeFile(t, ed, []byte(cases[5].chain), 0o644)
		found := false
		for _, r := range e.s.Inventory() {
			if r.Kind == "leaf" && strings.Contains(r.Subject, "Ed448Leaf") {
				found = true
				if r.LeafType != store.LeafV2G20 || r.SeccID != "Ed448Leaf" || !strings.HasPrefix(r.KeyStatus, "unsupported (Ed448") {
					t.Errorf("Ed448 leaf listed as %+v", r)
				}
			}
		}
		if !found {
			t.Error("the Ed448 leaf placed by hand is not listed")
		}
		if got := e.s.GetLeafCertificateInfo(store.LeafV2G20, store.EncodingPEM, false); got.Status == store.InfoAccepted {
			t.Errorf("an Ed448 leaf was selected: %+v", got.Info)
		}
		// It can be named by hash data and deleted.
		edCert := fileCerts(t, ed)[0]
		if r := e.s.DeleteCertificate(hashOf(t, edCert, p.sub2.x509)); r != store.DeleteAccepted || fileExists(ed) {
			t.Errorf("delete the Ed448 leaf by hash: %s", r)
		}
	}
	// The same -20 leaf installs as V2G20; V2G20 queries see it, V2G queries do not.
	if got := e.s.UpdateLeafCertificate(good, store.LeafV2G20); got != store.InstallAccepted {
		t.Fatalf("good -20 leaf: %s\n%s", got, e.logs)
	}
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoAccepted ||
		fileCerts(t, got.Info.CertificateSingle)[0].Subject.CommonName != "SECCCert" {
		t.Errorf("V2G after a -20 install: %+v", got)
	}
}

// secc20_key_algorithm: Ed448 is refused at Open with the reason (Go cannot make Ed448 keys), and
// so is any key the -20 profile does not allow.
func TestV2G20KeyAlgorithmConfig(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"Ed448", "ed448", "P-256"} {
		cfg := store.DefaultConfig(t.TempDir())
		cfg.SECC20KeyAlgorithm = alg
		_, err := store.Open(cfg, store.Options{})
		if err == nil || !strings.Contains(err.Error(), "secc20_key_algorithm") {
			t.Errorf("%s: Open err = %v", alg, err)
		}
		if strings.EqualFold(alg, "ed448") && !strings.Contains(err.Error(), "Go's crypto libraries have no Ed448") {
			t.Errorf("%s: the reason is not named: %v", alg, err)
		}
	}
}

// get_v2g_ocsp_request_data covers the -20 leaf and its sub-CAs beside the -2 chain; a cached
// response of the -20 leaf is in its leaf info.
func TestV2G20OCSP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{iso15118_20: true})
	want := map[certs.HashData]bool{}
	for _, c := range []struct{ cert, issuer *x509.Certificate }{
		{e.pki.SECC20Leaf.Cert, e.pki.CPO20SubCA2.Cert}, {e.pki.CPO20SubCA2.Cert, e.pki.CPO20SubCA1.Cert},
		{e.pki.CPO20SubCA1.Cert, e.pki.V2G20Root.Cert}, {e.pki.SECCLeaf.Cert, e.pki.CPOSubCA2.Cert},
	} {
		want[hashOf(t, c.cert, c.issuer)] = true
	}
	got := map[certs.HashData]bool{}
	for _, r := range e.s.GetV2GOCSPRequestData().List {
		got[r.HashData] = true
		if r.ResponderURL == "" {
			t.Errorf("no responder URL for %+v", r.HashData)
		}
	}
	for h := range want {
		if !got[h] {
			t.Errorf("request data lacks %+v", h)
		}
	}
	leafHash := hashOf(t, e.pki.SECC20Leaf.Cert, e.pki.CPO20SubCA2.Cert)
	now := e.clock.Now()
	der, err := ocsp.CreateResponse(e.pki.CPO20SubCA2.Cert, e.pki.CPO20SubCA2.Cert, ocsp.Response{Status: ocsp.Good,
		SerialNumber: e.pki.SECC20Leaf.Cert.SerialNumber, ThisUpdate: now.Add(-60e9), NextUpdate: now.Add(24 * 3600e9)}, e.pki.CPO20SubCA2.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.UpdateOCSPCache(leafHash, base64.StdEncoding.EncodeToString(der)); err != nil {
		t.Fatalf("UpdateOCSPCache of the -20 leaf: %v", err)
	}
	info := e.s.GetLeafCertificateInfo(store.LeafV2G20, store.EncodingPEM, true)
	if info.Status != store.InfoAccepted {
		t.Fatalf("V2G20 info: %s", info.Status)
	}
	var path string
	for _, o := range info.Info.OCSP {
		if o.Hash == leafHash {
			path = o.OCSPPath
		}
	}
	if path == "" || string(readFile(t, path)) != string(der) {
		t.Fatalf("leaf info OCSP %+v: the -20 leaf's cached response is not there", info.Info.OCSP)
	}
	if len(info.Info.OCSP) != 3 {
		t.Errorf("OCSP entries %d, want leaf and two sub-CAs", len(info.Info.OCSP))
	}
	// delete_certificate by the -20 leaf's hash data removes it as a V2G20 leaf.
	e.events.take()
	if r := e.s.DeleteCertificate(leafHash); r != store.DeleteAccepted {
		t.Fatalf("delete the -20 leaf: %s", r)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].LeafType != store.LeafV2G20 {
		t.Errorf("delete events %+v, want one of type V2G20", ev)
	}
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G20, store.EncodingPEM, false); got.Status != store.InfoNotFound {
		t.Errorf("V2G20 after deleting its only leaf: %s", got.Status)
	}
	// The -2 leaf's info does not carry the -20 response.
	for _, o := range e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true).Info.OCSP {
		if o.OCSPPath == path {
			t.Error("the V2G leaf info carries the -20 leaf's response")
		}
	}
}

// The dispatcher accepts V2G20 wherever a leaf type goes, and certificate_store_update names it.
func TestV2G20ThroughDispatcher(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{iso15118_20: true})
	var info store.CertificateInfoResult
	if err := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G20", "encoding": "PEM", "include_ocsp": false}, &info); err != nil {
		t.Fatal(err)
	}
	if info.Status != store.InfoAccepted || !fileCerts(t, info.Info.CertificateSingle)[0].Equal(e.pki.SECC20Leaf.Cert) {
		t.Fatalf("get_leaf_certificate_info V2G20: %+v", info)
	}
	var days int
	if err := e.call("get_leaf_expiry_days_count", map[string]any{"certificate_type": "V2G20"}, &days); err != nil || days < 700 {
		t.Fatalf("get_leaf_expiry_days_count V2G20: %d %v", days, err)
	}
	var csr store.CSRResult
	if err := e.call("generate_certificate_signing_request", map[string]any{"certificate_type": "V2G20", "country": "DE",
		"organization": "EVerest test", "common": "SECC20", "use_tpm": false}, &csr); err != nil || csr.Status != store.CSRAccepted {
		t.Fatalf("generate_certificate_signing_request V2G20: %+v %v", csr, err)
	}
	var valid string
	if err := e.call("verify_certificate", map[string]any{"certificate_chain": string(e.pki.SECC20Leaf.ChainPEM()), "certificate_types": []string{"V2G20"}}, &valid); err != nil || valid != "Valid" {
		t.Fatalf("verify_certificate V2G20: %s %v", valid, err)
	}
}
