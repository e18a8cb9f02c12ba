package store_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/internal/testtool"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// ---------------------------------------------------------------------------------------------
// Helpers (all prefixed ocsp: other test files of this package define their own).

// ocspClock is the store's clock in these tests.
type ocspClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ocspClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ocspClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ocspEnv is a store over the standard test PKI in the EVerest default layout.
type ocspEnv struct {
	t     *testing.T
	root  string
	pki   *testpki.PKI
	lay   *testpki.Layout
	clock *ocspClock
	log   *syncBuffer
	s     *store.Store
	d     *api.Dispatcher
}

func ocspNewEnv(t *testing.T, opts testpki.Options) *ocspEnv {
	t.Helper()
	root := t.TempDir()
	now := time.Now().UTC().Truncate(time.Second)
	opts.Now = now
	p, err := testpki.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	lay, err := p.WriteLayout(root, "")
	if err != nil {
		t.Fatal(err)
	}
	e := &ocspEnv{t: t, root: root, pki: p, lay: lay, clock: &ocspClock{t: now}, log: &syncBuffer{}}
	s, err := store.Open(store.DefaultConfig(root), store.Options{
		Clock:  e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s, e.d = s, api.NewDispatcher(s)
	return e
}

func (e *ocspEnv) path(rel string) string { return filepath.Join(e.root, filepath.FromSlash(rel)) }

// call runs a command through the dispatcher, as every transport does, and decodes the result.
func (e *ocspEnv) call(cmd string, args any, out any) json.RawMessage {
	e.t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.d.Call(context.Background(), cmd, raw)
	if err != nil {
		e.t.Fatalf("%s: %v", cmd, err)
	}
	if out != nil {
		if err := json.Unmarshal(res, out); err != nil {
			e.t.Fatalf("%s: result %s: %v", cmd, res, err)
		}
	}
	return res
}

// update caches a DER response through the dispatcher (base64, as OCPP delivers it).
func (e *ocspEnv) update(h certs.HashData, der []byte) {
	e.t.Helper()
	res := e.call("update_ocsp_cache", map[string]any{"certificate_hash_data": h, "ocsp_response": base64.StdEncoding.EncodeToString(der)}, nil)
	if string(res) != "null" {
		e.t.Fatalf("update_ocsp_cache result %s, want null", res)
	}
}

func (e *ocspEnv) v2gRequestData() []store.OCSPRequestData {
	e.t.Helper()
	var out store.OCSPRequestDataList
	e.call("get_v2g_ocsp_request_data", map[string]any{}, &out)
	return out.List
}

func (e *ocspEnv) moRequestData(chainPEM string) []store.OCSPRequestData {
	e.t.Helper()
	var out store.OCSPRequestDataList
	raw := e.call("get_mo_ocsp_request_data", map[string]any{"certificate_chain": chainPEM}, &out)
	if out.List == nil {
		e.t.Fatalf("get_mo_ocsp_request_data: list is null: %s", raw)
	}
	return out.List
}

func (e *ocspEnv) leafInfo(lt store.LeafType, includeOCSP bool) *store.CertificateInfo {
	e.t.Helper()
	var res store.CertificateInfoResult
	e.call("get_leaf_certificate_info", map[string]any{"certificate_type": lt, "encoding": "PEM", "include_ocsp": includeOCSP}, &res)
	if res.Status != store.InfoAccepted || res.Info == nil {
		e.t.Fatalf("get_leaf_certificate_info(%s): %+v", lt, res)
	}
	return res.Info
}

// placeLeaf writes a leaf (with its chain up to, not including, the root) and its key into the
// SECC leaf directory, as an installer would.
func (e *ocspEnv) placeLeaf(name string, leaf *testpki.Issued) {
	e.t.Helper()
	ocspWrite(e.t, e.path("client/cso/"+name+".pem"), leaf.ChainPEM())
	key, err := leaf.KeyPEM("")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(e.path("client/cso/"+name+".key"), key, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func ocspWrite(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func ocspIssue(t *testing.T, ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
	t.Helper()
	c, err := ca.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ocspRoot(t *testing.T, cn string) *testpki.Issued {
	t.Helper()
	c, err := testpki.SelfSigned(testpki.Spec{CommonName: cn, IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ocspResponderSpec is a delegated OCSP responder certificate (RFC 6960 §4.2.2.2).
func ocspResponderSpec(cn string) testpki.Spec {
	return testpki.Spec{CommonName: cn, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}
}

func ocspHash(t *testing.T, c, issuer *x509.Certificate) certs.HashData {
	t.Helper()
	h, err := certs.ComputeHashData(c, issuer, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ocspPEM(cs ...*x509.Certificate) string { return string(certs.EncodePEM(cs...)) }

// ocspCNs names the certificates a request data list is about, sorted; hashes maps the hash data
// of every candidate to its common name.
func ocspCNs(t *testing.T, list []store.OCSPRequestData, hashes map[certs.HashData]string) []string {
	t.Helper()
	var out []string
	seen := map[certs.HashData]bool{}
	for _, r := range list {
		h := r.HashData.Normalize()
		if seen[h] {
			t.Errorf("duplicate request data %+v", h)
		}
		seen[h] = true
		cn, ok := hashes[h]
		if !ok {
			t.Errorf("request data %+v names no expected certificate", h)
			continue
		}
		out = append(out, cn)
	}
	sort.Strings(out)
	return out
}

func ocspSorted(s ...string) []string {
	sort.Strings(s)
	return s
}

var ocspOIDSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}

// The ASN.1 of an OCSPRequest (RFC 6960 §4.1.1) without extensions or signature.
type (
	ocspASN1CertID struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		NameHash      []byte
		IssuerKeyHash []byte
		SerialNumber  *big.Int
	}
	ocspASN1Request struct {
		TBSRequest struct {
			RequestList []struct{ ReqCert ocspASN1CertID }
		}
	}
)

// ocspRequestFrom builds an OCSP request from our request data alone, as a CSMS (or EVerest's
// OCPP stack) does: the CertID is the hash data, nothing else is known about the certificate.
func ocspRequestFrom(t *testing.T, hs ...certs.HashData) []byte {
	t.Helper()
	var req ocspASN1Request
	for _, h := range hs {
		if h.Algorithm != certs.SHA256 {
			t.Fatalf("request data with %s", h.Algorithm)
		}
		name, err1 := hex.DecodeString(h.IssuerNameHash)
		key, err2 := hex.DecodeString(h.IssuerKeyHash)
		serial, ok := new(big.Int).SetString(h.SerialNumber, 16)
		if err1 != nil || err2 != nil || !ok {
			t.Fatalf("bad request data %+v", h)
		}
		req.TBSRequest.RequestList = append(req.TBSRequest.RequestList, struct{ ReqCert ocspASN1CertID }{ocspASN1CertID{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: ocspOIDSHA256, Parameters: asn1.NullRawValue},
			NameHash:      name, IssuerKeyHash: key, SerialNumber: serial,
		}})
	}
	der, err := asn1.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ocspIssuerHashes are the CertID hashes of certificates issued by is, in digest h.
func ocspIssuerHashes(is *x509.Certificate, h crypto.Hash) (name, key []byte) {
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(is.RawSubjectPublicKeyInfo, &spki); err != nil {
		panic(err)
	}
	var nh, kh interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
	}
	if h == crypto.SHA1 {
		nh, kh = sha1.New(), sha1.New()
	} else {
		nh, kh = sha256.New(), sha256.New()
	}
	nh.Write(is.RawSubject)
	kh.Write(spki.PublicKey.Bytes)
	return nh.Sum(nil), kh.Sum(nil)
}

// ocspGoResponse makes a response with x/crypto: about serial, with the CertID of issuer, signed
// by signer (embedded when embed is set).
func ocspGoResponse(t *testing.T, issuer *x509.Certificate, signer *testpki.Issued, embed bool, serial *big.Int, status int, thisUpdate, nextUpdate time.Time) []byte {
	t.Helper()
	tmpl := ocsp.Response{Status: status, SerialNumber: serial, ThisUpdate: thisUpdate, NextUpdate: nextUpdate, IssuerHash: crypto.SHA256}
	if status == ocsp.Revoked {
		tmpl.RevokedAt, tmpl.RevocationReason = thisUpdate, ocsp.KeyCompromise
	}
	if embed {
		tmpl.Certificate = signer.Cert
	}
	der, err := ocsp.CreateResponse(issuer, signer.Cert, tmpl, signer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// ocspGood is a fresh good response about c signed by its issuer's key.
func (e *ocspEnv) good(c, issuer *testpki.Issued) []byte {
	now := e.clock.Now()
	return ocspGoResponse(e.t, issuer.Cert, issuer, false, c.Cert.SerialNumber, ocsp.Good, now.Add(-time.Minute), now.Add(24*time.Hour))
}

// ocspCacheFiles lists the .der and .hash files of a cache directory.
func ocspCacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if n := de.Name(); strings.HasSuffix(n, ".der") || strings.HasSuffix(n, ".hash") {
			if !de.Type().IsRegular() {
				t.Errorf("%s is not a regular file", n)
			}
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}

// ocspHashFileOf finds the .hash file of the cached response for h in dir and returns the .der.
func ocspCachedDER(t *testing.T, dir string, h certs.HashData) string {
	t.Helper()
	for _, p := range ocspCacheFiles(t, dir) {
		if !strings.HasSuffix(p, ".hash") {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(f) != 4 {
			t.Fatalf("%s: %d lines, want 4 (algorithm, name hash, key hash, serial)", p, len(f))
		}
		got := certs.HashData{Algorithm: certs.HashAlgorithm(f[0]), IssuerNameHash: f[1], IssuerKeyHash: f[2], SerialNumber: f[3]}
		if got.Equal(h) {
			return strings.TrimSuffix(p, ".hash") + ".der"
		}
	}
	t.Fatalf("no cache entry for %+v in %s", h, dir)
	return ""
}

// ocspOpenSSL runs the OpenSSL OCSP responder offline (request and response as files, nothing
// listens) and checks responses the way an OCSP client does.
type ocspOpenSSL struct {
	t   *testing.T
	bin string
	dir string
	n   int
}

func ocspNewOpenSSL(t *testing.T) *ocspOpenSSL {
	return &ocspOpenSSL{t: t, bin: testtool.Require(t, "openssl"), dir: t.TempDir()}
}

func (o *ocspOpenSSL) file(name string, data []byte) string {
	o.t.Helper()
	return ocspWrite(o.t, filepath.Join(o.dir, name), data)
}

func (o *ocspOpenSSL) run(args ...string) (string, error) {
	cmd := exec.Command(o.bin, args...)
	cmd.Dir = o.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ocspIndexEntry is one line of the responder's index.txt (the `openssl ca` database).
type ocspIndexEntry struct {
	cert    *x509.Certificate
	revoked bool
}

// respond answers the DER request req as the responder for CA ca, signing with signer's key,
// from an index of the given certificates. extra are further `openssl ocsp` options.
func (o *ocspOpenSSL) respond(req []byte, ca *x509.Certificate, signer *testpki.Issued, index []ocspIndexEntry, extra ...string) []byte {
	o.t.Helper()
	o.n++
	id := fmt.Sprint(o.n)
	var idx strings.Builder
	for _, e := range index {
		serial := fmt.Sprintf("%X", e.cert.SerialNumber)
		if len(serial)%2 == 1 {
			serial = "0" + serial // BN_bn2hex writes whole bytes
		}
		exp := e.cert.NotAfter.UTC().Format("060102150405Z")
		if e.revoked {
			fmt.Fprintf(&idx, "R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=%s\n", exp, time.Now().Add(-time.Hour).UTC().Format("060102150405Z"), serial, e.cert.Subject.CommonName)
		} else {
			fmt.Fprintf(&idx, "V\t%s\t\t%s\tunknown\t/CN=%s\n", exp, serial, e.cert.Subject.CommonName)
		}
	}
	key, err := signer.KeyPEM("")
	if err != nil {
		o.t.Fatal(err)
	}
	indexFile := o.file("index"+id+".txt", []byte(idx.String()))
	o.file("index"+id+".txt.attr", []byte("unique_subject = no\n"))
	args := []string{"ocsp", "-index", indexFile,
		"-CA", o.file("ca"+id+".pem", []byte(ocspPEM(ca))),
		"-rsigner", o.file("signer"+id+".pem", signer.CertPEM()),
		"-rkey", o.file("signer"+id+".key", key),
		"-reqin", o.file("req"+id+".der", req),
		"-respout", filepath.Join(o.dir, "resp"+id+".der"),
		"-ndays", "7"}
	if out, err := o.run(append(args, extra...)...); err != nil {
		o.t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
	der, err := os.ReadFile(filepath.Join(o.dir, "resp"+id+".der"))
	if err != nil {
		o.t.Fatal(err)
	}
	return der
}

// check runs `openssl ocsp -respin` on a stored response: the signature must verify up to the
// trust anchor and the status of cert must be want ("good" or "revoked").
func (o *ocspOpenSSL) check(respFile string, cert, issuer, anchor *x509.Certificate, untrusted []*x509.Certificate, want string) {
	o.t.Helper()
	o.n++
	id := fmt.Sprint(o.n)
	args := []string{"ocsp", "-respin", respFile, "-sha256",
		"-issuer", o.file("issuer"+id+".pem", []byte(ocspPEM(issuer))),
		"-cert", o.file("cert"+id+".pem", []byte(ocspPEM(cert))),
		"-CAfile", o.file("anchor"+id+".pem", []byte(ocspPEM(anchor))),
		"-verify_other", o.file("other"+id+".pem", []byte(ocspPEM(untrusted...))),
		"-no_nonce"}
	out, err := o.run(args...)
	if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, ": "+want) {
		o.t.Fatalf("openssl ocsp -respin %s (%s, want %s): %v\n%s", respFile, cert.Subject.CommonName, want, err, out)
	}
}

// ---------------------------------------------------------------------------------------------
// get_v2g_ocsp_request_data

// TestOCSPV2GRequestData (reference T33, adapted): one entry per certificate below the root of
// every SECC chain, each once across chains, with the first AIA OCSP URL. Changed by DESIGN.md §3
// row 8: a leaf that is not valid yet contributes its entry (the reference's hierarchy dropped it,
// though issue #108 asked for it). Left out: expired leaves, certificates without an OCSP URL and
// chains the V2G domain does not trust (a station never serves them).
func TestOCSPV2GRequestData(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	now := e.clock.Now()
	url := testpki.DefaultOCSPURL
	seccSpec := func(cn string) testpki.Spec {
		return testpki.Spec{CommonName: cn, DomainComponent: "CPO", OCSPURLs: []string{url}}
	}

	grid := ocspIssue(t, p.CPOSubCA2, seccSpec("SECCGridSyncCert"))
	e.placeLeaf("SECC_GRID_CHAIN", grid)
	future := seccSpec("SECCFuture")
	future.NotBefore, future.NotAfter = now.Add(30*24*time.Hour), now.Add(400*24*time.Hour)
	e.placeLeaf("SECC_FUTURE_CHAIN", ocspIssue(t, p.CPOSubCA2, future))
	expired := seccSpec("SECCExpired")
	expired.NotBefore, expired.NotAfter = now.Add(-400*24*time.Hour), now.Add(-24*time.Hour)
	e.placeLeaf("SECC_EXPIRED_CHAIN", ocspIssue(t, p.CPOSubCA2, expired))
	two := seccSpec("SECCTwoURLs")
	two.OCSPURLs = []string{"http://127.0.0.1:1/first", "http://127.0.0.1:2/second"}
	e.placeLeaf("SECC_TWO_URLS", ocspIssue(t, p.CPOSubCA2, two))
	noURL := seccSpec("SECCNoURL")
	noURL.OCSPURLs = nil
	e.placeLeaf("SECC_NO_URL", ocspIssue(t, p.CPOSubCA2, noURL))
	strangerRoot := ocspRoot(t, "StrangerRoot")
	strangerSub := ocspIssue(t, strangerRoot, testpki.Spec{CommonName: "StrangerSub", IsCA: true, OCSPURLs: []string{url}})
	e.placeLeaf("SECC_STRANGER", ocspIssue(t, strangerSub, seccSpec("SECCStranger")))

	// Every certificate that may appear, by hash data.
	hashes := map[certs.HashData]string{}
	for _, c := range []*testpki.Issued{p.CPOSubCA1, p.CPOSubCA2, p.SECCLeaf, grid} {
		hashes[ocspHash(t, c.Cert, c.Issuer.Cert)] = c.Cert.Subject.CommonName
	}
	list := e.v2gRequestData()
	for _, r := range list {
		if r.HashData.Algorithm != certs.SHA256 {
			t.Errorf("hash algorithm %s, want SHA256", r.HashData.Algorithm)
		}
	}
	// The future and two-URL leaves are found through the certificates of the leaf directory.
	for _, name := range []string{"SECC_FUTURE_CHAIN", "SECC_TWO_URLS", "SECC_EXPIRED_CHAIN", "SECC_NO_URL", "SECC_STRANGER"} {
		cs, err := certs.ParseCertificates(ocspRead(t, e.path("client/cso/"+name+".pem")))
		if err != nil {
			t.Fatal(err)
		}
		hashes[ocspHash(t, cs[0], cs[1])] = cs[0].Subject.CommonName
	}
	got := ocspCNs(t, list, hashes)
	want := ocspSorted("CPOSubCA1", "CPOSubCA2", "SECCCert", "SECCGridSyncCert", "SECCFuture", "SECCTwoURLs")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("request data for %v, want %v", got, want)
	}
	for _, r := range list {
		wantURL := url
		if hashes[r.HashData.Normalize()] == "SECCTwoURLs" {
			wantURL = "http://127.0.0.1:1/first"
		}
		if r.ResponderURL != wantURL {
			t.Errorf("%s: responder_url %q, want %q", hashes[r.HashData.Normalize()], r.ResponderURL, wantURL)
		}
	}

	// The wire form: the list is never null, and each entry has exactly the interface's fields.
	raw := e.call("get_v2g_ocsp_request_data", nil, nil)
	var wire struct {
		List []map[string]json.RawMessage `json:"ocsp_request_data_list"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil || len(wire.List) != len(want) {
		t.Fatalf("wire result %s: %v", raw, err)
	}
	for _, entry := range wire.List {
		if len(entry) != 2 || entry["certificate_hash_data"] == nil || entry["responder_url"] == nil {
			t.Fatalf("wire entry %v", entry)
		}
	}
}

// TestOCSPV2GRequestDataEmpty: without SECC leaves the answer is an empty list, not null.
func TestOCSPV2GRequestDataEmpty(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	for _, f := range []string{e.lay.SECCLeafCert, e.lay.SECCChain} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if raw := e.call("get_v2g_ocsp_request_data", nil, nil); string(raw) != `{"ocsp_request_data_list":[]}` {
		t.Fatalf("got %s", raw)
	}
}

// ---------------------------------------------------------------------------------------------
// get_mo_ocsp_request_data

// TestOCSPMORequestData (reference T34, adapted): the contract chain is verified against the V2G
// and MO domains, then every certificate below the root with an OCSP URL gets an entry. The
// standard PKI's contract certificate has an OCSP URL (the reference's fixture had none: that case
// is the second row). Changed by DESIGN.md §3 row 14: a chain that includes its root gives the
// same answer (the reference gave none).
func TestOCSPMORequestData(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	now := e.clock.Now()
	contractNoURL := ocspIssue(t, p.MOSubCA2, testpki.Spec{CommonName: "DEPNXC00000001"})
	moUnderV2G := ocspIssue(t, p.CPOSubCA2, testpki.Spec{CommonName: "DEPNXC00000002"})
	expiredSpec := testpki.Spec{CommonName: "DEPNXC00000003", OCSPURLs: []string{testpki.DefaultOCSPURL}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)}
	expiredContract := ocspIssue(t, p.MOSubCA2, expiredSpec)
	strangerRoot := ocspRoot(t, "StrangerRoot")
	strangerSub := ocspIssue(t, strangerRoot, testpki.Spec{CommonName: "StrangerSub", IsCA: true, OCSPURLs: []string{testpki.DefaultOCSPURL}})
	strangerLeaf := ocspIssue(t, strangerSub, testpki.Spec{CommonName: "DEPNXC00000004", OCSPURLs: []string{testpki.DefaultOCSPURL}})

	hashes := map[certs.HashData]string{}
	for _, c := range []*testpki.Issued{p.MOSubCA1, p.MOSubCA2, p.Contract, p.CPOSubCA1, p.CPOSubCA2, p.SECCLeaf} {
		hashes[ocspHash(t, c.Cert, c.Issuer.Cert)] = c.Cert.Subject.CommonName
	}
	cases := []struct {
		name  string
		chain string
		want  []string
	}{
		{"contract chain", string(p.Contract.ChainPEM()), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		{"contract without OCSP URL", string(contractNoURL.ChainPEM()), []string{"MOSubCA1", "MOSubCA2"}},
		{"MO leaf under the V2G PKI", string(moUnderV2G.ChainPEM()), []string{"CPOSubCA1", "CPOSubCA2"}},
		{"SECC chain", string(p.SECCLeaf.ChainPEM()), []string{"CPOSubCA1", "CPOSubCA2", "SECCCert"}},
		{"contract chain with its root", string(p.Contract.ChainPEM()) + ocspPEM(p.MORoot.Cert), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		// The chain's leaf is the certificate that issued none of the others, in whatever order
		// the chain comes (the reference builds the hierarchy from the input): a chain sent
		// sub-CA or root first gets the same answer as leaf first, never only its first
		// certificate's.
		{"sub-CAs only, issuer first", ocspPEM(p.MOSubCA1.Cert, p.MOSubCA2.Cert), []string{"MOSubCA1", "MOSubCA2"}},
		{"contract chain issuer first", ocspPEM(p.MOSubCA1.Cert, p.MOSubCA2.Cert, p.Contract.Cert), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		{"contract chain mixed order", ocspPEM(p.MOSubCA2.Cert, p.Contract.Cert, p.MOSubCA1.Cert), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		{"contract chain root first", ocspPEM(p.MORoot.Cert, p.MOSubCA1.Cert, p.MOSubCA2.Cert, p.Contract.Cert), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		// Every certificate sent must be on the verified chain, as in the reference: a stray
		// certificate, or a sub-CA with a leaf it did not issue, makes the input no chain.
		{"sub-CA with a contract it did not issue", ocspPEM(p.MOSubCA1.Cert, p.Contract.Cert), nil},
		{"contract chain with a stray sub-CA", ocspPEM(p.Contract.Cert, p.MOSubCA2.Cert, p.MOSubCA1.Cert, p.CPOSubCA1.Cert), nil},
		{"contract chain with a stray root", ocspPEM(p.Contract.Cert, p.MOSubCA2.Cert, p.MOSubCA1.Cert, p.V2GRoot.Cert), nil},
		{"contract chain with a duplicate", ocspPEM(p.Contract.Cert, p.Contract.Cert, p.MOSubCA2.Cert, p.MOSubCA1.Cert), []string{"MOSubCA1", "MOSubCA2", testpki.EMAID}},
		{"contract without its sub-CAs", ocspPEM(p.Contract.Cert), nil}, // MO sub-CAs are not installed
		{"expired contract", string(expiredContract.ChainPEM()), nil},
		{"untrusted chain", string(strangerLeaf.ChainPEM()), nil},
		{"empty", "", nil},
		{"garbage", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			list := e.moRequestData(tc.chain)
			got := ocspCNs(t, list, hashes)
			if fmt.Sprint(got) != fmt.Sprint(ocspSorted(tc.want...)) {
				t.Fatalf("request data for %v, want %v", got, tc.want)
			}
			for _, r := range list {
				if r.ResponderURL != testpki.DefaultOCSPURL {
					t.Errorf("responder_url %q", r.ResponderURL)
				}
			}
		})
	}
}

func ocspRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------------------------------
// update_ocsp_cache with real responders

// ocspV2GChain maps the request data of the standard PKI's SECC chain to the certificates.
type ocspTarget struct {
	req    store.OCSPRequestData
	cert   *testpki.Issued
	issuer *testpki.Issued
}

func (e *ocspEnv) v2gTargets() []ocspTarget {
	e.t.Helper()
	byHash := map[certs.HashData]*testpki.Issued{}
	for _, c := range []*testpki.Issued{e.pki.SECCLeaf, e.pki.CPOSubCA2, e.pki.CPOSubCA1} {
		byHash[ocspHash(e.t, c.Cert, c.Issuer.Cert)] = c
	}
	var out []ocspTarget
	for _, r := range e.v2gRequestData() {
		c := byHash[r.HashData.Normalize()]
		if c == nil {
			e.t.Fatalf("unexpected request data %+v", r)
		}
		out = append(out, ocspTarget{req: r, cert: c, issuer: c.Issuer})
	}
	if len(out) != 3 {
		e.t.Fatalf("%d request data entries, want 3 (leaf and two sub-CAs)", len(out))
	}
	return out
}

// TestOCSPCacheOpenSSLResponder (reference T35, adapted): request data → requests built from it →
// the OpenSSL OCSP responder (offline: -reqin/-respout, nothing listens) → update_ocsp_cache →
// DER files next to the certificates that `openssl ocsp -respin` and Go's parser accept → paths
// in the leaf info. Changed by DESIGN.md §3 rows 4 and 5: the reference stored any string given
// (its test caches "OCSP_MOCK_RESPONSE_DATA", which is rejected here, see TestOCSPCacheRejects)
// as the .der, and wrote a second copy of each sub-CA's entry into ca/v2g/ocsp; evsesec stores
// the decoded DER once, next to the copy of the certificate it finds first (the chain file in
// client/cso), so client/cso/ocsp holds 6 files and ca/v2g/ocsp none.
func TestOCSPCacheOpenSSLResponder(t *testing.T) {
	ossl := ocspNewOpenSSL(t)
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	targets := e.v2gTargets()
	index := []ocspIndexEntry{{cert: p.SECCLeaf.Cert}, {cert: p.CPOSubCA2.Cert}, {cert: p.CPOSubCA1.Cert, revoked: true}}
	status := map[*testpki.Issued]string{p.SECCLeaf: "good", p.CPOSubCA2: "good", p.CPOSubCA1: "revoked"}
	cso := e.path("client/cso/ocsp")

	// Each response is signed by the certificate's issuer. The responder for CPO Sub-CA 2 embeds
	// its signing certificate (OpenSSL's default), the others do not (-resp_no_certs).
	respond := func(tg ocspTarget, idx []ocspIndexEntry) []byte {
		var extra []string
		if tg.cert != p.CPOSubCA2 {
			extra = append(extra, "-resp_no_certs")
		}
		return ossl.respond(ocspRequestFrom(t, tg.req.HashData), tg.issuer.Cert, tg.issuer, idx, extra...)
	}
	responses := map[*testpki.Issued][]byte{}
	for _, tg := range targets {
		der := respond(tg, index)
		responses[tg.cert] = der
		e.update(tg.req.HashData, der)
	}

	files := ocspCacheFiles(t, cso)
	if len(files) != 6 {
		t.Fatalf("client/cso/ocsp holds %v, want 3 .der and 3 .hash files", files)
	}
	if f := ocspCacheFiles(t, e.path("ca/v2g/ocsp")); len(f) != 0 {
		t.Fatalf("ca/v2g/ocsp holds %v, want nothing (one copy per certificate)", f)
	}
	stored := map[*testpki.Issued]string{}
	for _, tg := range targets {
		derPath := ocspCachedDER(t, cso, tg.req.HashData)
		stored[tg.cert] = derPath
		if got := ocspRead(t, derPath); !bytes.Equal(got, responses[tg.cert]) {
			t.Fatalf("%s: stored bytes are not the response's DER", derPath)
		}
		ossl.check(derPath, tg.cert.Cert, tg.issuer.Cert, p.V2GRoot.Cert, []*x509.Certificate{p.CPOSubCA1.Cert, p.CPOSubCA2.Cert}, status[tg.cert])
		ocspGoCheck(t, ocspRead(t, derPath), tg.cert.Cert, tg.issuer.Cert, status[tg.cert])
	}

	// The leaf info carries one entry per certificate of the chain file, in its order, each
	// with the path of its response.
	checkInfo := func(in *store.CertificateInfo) {
		t.Helper()
		chain := []*testpki.Issued{p.SECCLeaf, p.CPOSubCA2, p.CPOSubCA1}
		if in.CertificateCount != 3 || len(in.OCSP) != 3 {
			t.Fatalf("certificate_count %d, %d ocsp entries; want 3 and 3", in.CertificateCount, len(in.OCSP))
		}
		for i, c := range chain {
			if want := ocspHash(t, c.Cert, c.Issuer.Cert); !in.OCSP[i].Hash.Equal(want) {
				t.Errorf("ocsp[%d] is %+v, want %s", i, in.OCSP[i].Hash, c.Cert.Subject.CommonName)
			}
			if in.OCSP[i].OCSPPath != stored[c] {
				t.Errorf("ocsp[%d] path %q, want %q", i, in.OCSP[i].OCSPPath, stored[c])
			}
		}
	}
	checkInfo(e.leafInfo(store.LeafV2G, true))
	var all store.CertificateFullInfoResult
	e.call("get_all_valid_certificates_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": true}, &all)
	if all.Status != store.InfoAccepted || len(all.Info) != 1 {
		t.Fatalf("get_all_valid_certificates_info: %+v", all)
	}
	checkInfo(&all.Info[0])
	if raw := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false}, nil); bytes.Contains(raw, []byte(`"ocsp"`)) {
		t.Fatalf("ocsp present though not asked for: %s", raw)
	}

	// A second round replaces the first in place: the leaf is revoked now, and its hash data
	// comes in upper case (matching is case-insensitive).
	index[0].revoked = true
	status[p.SECCLeaf] = "revoked"
	for _, tg := range targets {
		der := respond(tg, index)
		responses[tg.cert] = der
		h := tg.req.HashData
		if tg.cert == p.SECCLeaf {
			h.IssuerNameHash, h.IssuerKeyHash, h.SerialNumber = strings.ToUpper(h.IssuerNameHash), strings.ToUpper(h.IssuerKeyHash), strings.ToUpper(h.SerialNumber)
		}
		e.update(h, der)
	}
	if files2 := ocspCacheFiles(t, cso); fmt.Sprint(files2) != fmt.Sprint(files) {
		t.Fatalf("second round changed the file set: %v, was %v", files2, files)
	}
	for _, tg := range targets {
		if got := ocspRead(t, stored[tg.cert]); !bytes.Equal(got, responses[tg.cert]) {
			t.Fatalf("%s was not replaced by the second response", stored[tg.cert])
		}
		ossl.check(stored[tg.cert], tg.cert.Cert, tg.issuer.Cert, p.V2GRoot.Cert, []*x509.Certificate{p.CPOSubCA1.Cert, p.CPOSubCA2.Cert}, status[tg.cert])
	}
	checkInfo(e.leafInfo(store.LeafV2G, true))
}

// ocspGoCheck parses a stored response with x/crypto/ocsp as a Go consumer would: signed by the
// issuer (checked directly, or through the embedded issuer certificate) or by a delegated
// responder the issuer certified.
func ocspGoCheck(t *testing.T, der []byte, cert, issuer *x509.Certificate, want string) {
	t.Helper()
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		// The issuer's own certificate embedded: x/crypto wants the issuer to have signed it.
		resp, err = ocsp.ParseResponse(der, nil)
		if err != nil || resp.Certificate == nil || !resp.Certificate.Equal(issuer) {
			t.Fatalf("x/crypto/ocsp rejects the stored response for %s: %v", cert.Subject.CommonName, err)
		}
	}
	if resp.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		t.Fatalf("response is about serial %x, want %x", resp.SerialNumber, cert.SerialNumber)
	}
	got := map[int]string{ocsp.Good: "good", ocsp.Revoked: "revoked", ocsp.Unknown: "unknown"}[resp.Status]
	if got != want {
		t.Fatalf("%s: status %s, want %s", cert.Subject.CommonName, got, want)
	}
}

// ocspHTTPResponder is an in-process OCSP responder (RFC 6960 over HTTP POST) on 127.0.0.1 that
// answers for the CAs it knows, signing with each CA's delegated responder.
type ocspHTTPResponder struct {
	mu       sync.Mutex
	cas      []*testpki.Issued
	signers  map[*testpki.Issued]*testpki.Issued
	revoked  map[string]bool // serial (hex)
	requests int
}

func (r *ocspHTTPResponder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/ocsp-request" {
		http.Error(w, "want POST application/ocsp-request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	if err != nil {
		return
	}
	r.requests++
	oreq, err := ocsp.ParseRequest(body)
	w.Header().Set("Content-Type", "application/ocsp-response")
	if err != nil {
		w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	for _, ca := range r.cas {
		name, key := ocspIssuerHashes(ca.Cert, oreq.HashAlgorithm)
		if !bytes.Equal(name, oreq.IssuerNameHash) || !bytes.Equal(key, oreq.IssuerKeyHash) {
			continue
		}
		signer := r.signers[ca]
		now := time.Now()
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: oreq.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour), IssuerHash: oreq.HashAlgorithm, Certificate: signer.Cert}
		if r.revoked[oreq.SerialNumber.Text(16)] {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, now.Add(-time.Hour), ocsp.CessationOfOperation
		}
		der, err := ocsp.CreateResponse(ca.Cert, signer.Cert, tmpl, signer.Key)
		if err != nil {
			w.Write(ocsp.InternalErrorErrorResponse)
			return
		}
		w.Write(der)
		return
	}
	w.Write(ocsp.UnauthorizedErrorResponse)
}

// TestOCSPCacheHTTPResponderDelegated: the responder URLs of the request data lead to an HTTP
// responder on 127.0.0.1 whose responses are signed by delegated responders (OCSPSigning EKU,
// issued by each CA); the requests are built from the request data alone. The cached responses
// load in OpenSSL and Go. An OpenSSL-made delegated response is accepted too.
func TestOCSPCacheHTTPResponderDelegated(t *testing.T) {
	ossl := ocspNewOpenSSL(t)
	responder := &ocspHTTPResponder{signers: map[*testpki.Issued]*testpki.Issued{}, revoked: map[string]bool{}}
	srv := httptest.NewServer(responder)
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Fatalf("responder listens on %s, want loopback", srv.URL)
	}
	e := ocspNewEnv(t, testpki.Options{OCSPURL: srv.URL + "/ocsp"})
	p := e.pki
	responder.mu.Lock()
	for _, ca := range []*testpki.Issued{p.V2GRoot, p.CPOSubCA1, p.CPOSubCA2} {
		responder.cas = append(responder.cas, ca)
		responder.signers[ca] = ocspIssue(t, ca, ocspResponderSpec("OCSP responder of "+ca.Cert.Subject.CommonName))
	}
	responder.revoked[p.CPOSubCA2.Cert.SerialNumber.Text(16)] = true
	responder.mu.Unlock()
	status := map[*testpki.Issued]string{p.SECCLeaf: "good", p.CPOSubCA2: "revoked", p.CPOSubCA1: "good"}

	cso := e.path("client/cso/ocsp")
	for _, tg := range e.v2gTargets() {
		if tg.req.ResponderURL != srv.URL+"/ocsp" {
			t.Fatalf("responder_url %q, want %q", tg.req.ResponderURL, srv.URL+"/ocsp")
		}
		resp, err := http.Post(tg.req.ResponderURL, "application/ocsp-request", bytes.NewReader(ocspRequestFrom(t, tg.req.HashData)))
		if err != nil {
			t.Fatal(err)
		}
		der, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("responder: %v %s", err, resp.Status)
		}
		e.update(tg.req.HashData, der)
		derPath := ocspCachedDER(t, cso, tg.req.HashData)
		if !bytes.Equal(ocspRead(t, derPath), der) {
			t.Fatalf("%s: stored bytes are not the response", derPath)
		}
		ossl.check(derPath, tg.cert.Cert, tg.issuer.Cert, p.V2GRoot.Cert, []*x509.Certificate{p.CPOSubCA1.Cert, p.CPOSubCA2.Cert}, status[tg.cert])
		ocspGoCheck(t, der, tg.cert.Cert, tg.issuer.Cert, status[tg.cert])
	}
	if responder.requests != 3 {
		t.Fatalf("responder saw %d requests, want 3", responder.requests)
	}
	for i, o := range e.leafInfo(store.LeafV2G, true).OCSP {
		if o.OCSPPath == "" {
			t.Errorf("ocsp[%d] has no path", i)
		}
	}

	// OpenSSL as the delegated responder of CPO Sub-CA 2 for the leaf.
	leafHash := ocspHash(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	delegated := ocspIssue(t, p.CPOSubCA2, ocspResponderSpec("OpenSSL OCSP responder"))
	der := ossl.respond(ocspRequestFrom(t, leafHash), p.CPOSubCA2.Cert, delegated, []ocspIndexEntry{{cert: p.SECCLeaf.Cert, revoked: true}})
	e.update(leafHash, der)
	derPath := ocspCachedDER(t, cso, leafHash)
	if !bytes.Equal(ocspRead(t, derPath), der) {
		t.Fatal("the OpenSSL delegated response was not stored")
	}
	ossl.check(derPath, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, p.V2GRoot.Cert, []*x509.Certificate{p.CPOSubCA1.Cert, p.CPOSubCA2.Cert}, "revoked")
	ocspGoCheck(t, der, p.SECCLeaf.Cert, p.CPOSubCA2.Cert, "revoked")
}

// ---------------------------------------------------------------------------------------------
// update_ocsp_cache: everything that must be refused

// TestOCSPCacheRejects: bad input of every kind is refused and leaves every byte of the tree as it
// was, including a good response cached before. The reference stored any string as the .der
// (DESIGN.md §3 row 4); its test's mock data is among the inputs.
func TestOCSPCacheRejects(t *testing.T) {
	ossl := ocspNewOpenSSL(t)
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	now := e.clock.Now()
	leaf, sub2 := p.SECCLeaf, p.CPOSubCA2
	leafHash := ocspHash(t, leaf.Cert, sub2.Cert)
	e.update(leafHash, e.good(leaf, sub2)) // the cache holds a good response to begin with
	before := testtool.Snapshot(t, e.root)

	stranger := ocspRoot(t, "Stranger")
	sibling := ocspIssue(t, sub2, testpki.Spec{CommonName: "SiblingLeaf", KeyUsage: x509.KeyUsageDigitalSignature})
	otherCAResponder := ocspIssue(t, p.MOSubCA2, ocspResponderSpec("MO responder"))
	expiredSpec := ocspResponderSpec("Expired responder")
	expiredSpec.NotBefore, expiredSpec.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	expiredResponder := ocspIssue(t, sub2, expiredSpec)
	good := e.good(leaf, sub2)
	serial := leaf.Cert.SerialNumber
	fresh, later := now.Add(-time.Minute), now.Add(24*time.Hour)
	req := ocspRequestFrom(t, leafHash)
	leafIndex := []ocspIndexEntry{{cert: leaf.Cert}}
	b64 := base64.StdEncoding.EncodeToString
	unknown := leafHash
	unknown.SerialNumber = "1234567890abcdef"

	cases := []struct {
		name     string
		hash     certs.HashData
		response string
	}{
		{"not base64", leafHash, "this is not base64!"},
		{"reference mock data", leafHash, "OCSP_MOCK_RESPONSE_DATA"},
		{"empty", leafHash, ""},
		{"base64 of garbage", leafHash, b64([]byte("garbage that is no DER at all"))},
		{"base64 of the DER in base64", leafHash, b64([]byte(b64(good)))},
		{"truncated response", leafHash, b64(good[:len(good)-10])},
		{"trailing data", leafHash, b64(append(append([]byte{}, good...), 0, 0))},
		{"response for another certificate", leafHash, b64(e.good(sub2, p.CPOSubCA1))},
		{"response for the CSMS leaf", leafHash, b64(e.good(p.CSMSLeaf, p.CSMSRoot))},
		{"signed by a stranger (OpenSSL, embedded)", leafHash, b64(ossl.respond(req, sub2.Cert, stranger, leafIndex))},
		{"signed by a stranger (no certificate)", leafHash, b64(ocspGoResponse(t, sub2.Cert, stranger, false, serial, ocsp.Good, fresh, later))},
		{"signed by a sibling without OCSPSigning", leafHash, b64(ocspGoResponse(t, sub2.Cert, sibling, true, serial, ocsp.Good, fresh, later))},
		{"delegated by another CA", leafHash, b64(ocspGoResponse(t, sub2.Cert, otherCAResponder, true, serial, ocsp.Good, fresh, later))},
		{"expired delegated responder", leafHash, b64(ocspGoResponse(t, sub2.Cert, expiredResponder, true, serial, ocsp.Good, fresh, later))},
		{"same serial, another issuer's CertID", leafHash, b64(ocspGoResponse(t, p.MOSubCA2.Cert, sub2, false, serial, ocsp.Good, fresh, later))},
		{"past its nextUpdate", leafHash, b64(ocspGoResponse(t, sub2.Cert, sub2, false, serial, ocsp.Good, now.Add(-48*time.Hour), now.Add(-time.Hour)))},
		{"unauthorized", leafHash, b64(ocsp.UnauthorizedErrorResponse)},
		{"try later", leafHash, b64(ocsp.TryLaterErrorResponse)},
		{"hash data of no certificate", unknown, b64(good)},
		{"malformed hash data", certs.HashData{Algorithm: certs.SHA256, IssuerNameHash: "xyz", IssuerKeyHash: leafHash.IssuerKeyHash, SerialNumber: leafHash.SerialNumber}, b64(good)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.s.UpdateOCSPCache(tc.hash, tc.response); err == nil {
				t.Fatal("accepted")
			}
			res, err := e.d.Call(context.Background(), "update_ocsp_cache", ocspJSON(t, map[string]any{"certificate_hash_data": tc.hash, "ocsp_response": tc.response}))
			if err != nil || string(res) != "null" {
				t.Fatalf("dispatcher: %s, %v; want null and no error", res, err)
			}
			if d := testtool.DiffSnapshots(before, testtool.Snapshot(t, e.root)); d != "" {
				t.Fatalf("tree changed: %s", d)
			}
		})
	}
	if !strings.Contains(e.log.String(), "update_ocsp_cache rejected") {
		t.Error("rejections are not logged")
	}
	// The good response still serves.
	if in := e.leafInfo(store.LeafV2G, true); in.OCSP[0].OCSPPath == "" {
		t.Fatal("the good response was lost")
	}
}

func ocspJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOCSPCacheEveryDomain: not only V2G (the reference's TODO): the CSMS leaf's response goes to
// client/csms/ocsp and shows in its leaf info, an MO sub-CA's to ca/mo/ocsp, and a root's (which
// answers for itself) next to its bundle.
func TestOCSPCacheEveryDomain(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki

	csmsHash := ocspHash(t, p.CSMSLeaf.Cert, p.CSMSRoot.Cert)
	e.update(csmsHash, e.good(p.CSMSLeaf, p.CSMSRoot))
	csmsDER := ocspCachedDER(t, e.path("client/csms/ocsp"), csmsHash)
	in := e.leafInfo(store.LeafCSMS, true)
	if len(in.OCSP) != 1 || in.OCSP[0].OCSPPath != csmsDER || !in.OCSP[0].Hash.Equal(csmsHash) {
		t.Fatalf("CSMS leaf info ocsp = %+v, want one entry with %s", in.OCSP, csmsDER)
	}

	var res store.InstallResult
	e.call("install_ca_certificate", map[string]any{"certificate": ocspPEM(p.MOSubCA1.Cert), "certificate_type": "MO"}, &res)
	if res != store.InstallAccepted {
		t.Fatalf("install MO Sub-CA 1: %s", res)
	}
	moHash := ocspHash(t, p.MOSubCA1.Cert, p.MORoot.Cert)
	e.update(moHash, e.good(p.MOSubCA1, p.MORoot))
	ocspCachedDER(t, e.path("ca/mo/ocsp"), moHash)

	mfHash := ocspHash(t, p.MFRoot.Cert, p.MFRoot.Cert)
	e.update(mfHash, e.good(p.MFRoot, p.MFRoot))
	ocspCachedDER(t, e.path("ca/mf/ocsp"), mfHash)

	for _, d := range []string{"client/csms/ocsp", "ca/mo/ocsp", "ca/mf/ocsp"} {
		if n := len(ocspCacheFiles(t, e.path(d))); n != 2 {
			t.Errorf("%s holds %d files, want 2", d, n)
		}
	}
}

// ---------------------------------------------------------------------------------------------
// Garbage collection of the cache

// TestOCSPGarbageCollect (reference T36, adapted): valid responses survive GC; a response past its
// nextUpdate stops being offered at once and is removed on the next GC run (DESIGN.md §3 row 2:
// every run, not only when the store is full, which the reference's test had to force); a .der
// the reference wrote as base64 text becomes DER; garbage and orphans go; and once the
// certificates are gone (bundle and chain file removed by hand) no cache file remains.
func TestOCSPGarbageCollect(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	now := e.clock.Now()
	cso, v2g := e.path("client/cso/ocsp"), e.path("ca/v2g/ocsp")
	targets := e.v2gTargets()
	for _, tg := range targets {
		next := now.Add(7 * 24 * time.Hour)
		if tg.cert == p.SECCLeaf {
			next = now.Add(time.Hour)
		}
		e.update(tg.req.HashData, ocspGoResponse(t, tg.issuer.Cert, tg.issuer, false, tg.cert.Cert.SerialNumber, ocsp.Good, now.Add(-time.Minute), next))
	}
	leafHash := ocspHash(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	leafDER := ocspCachedDER(t, cso, leafHash)

	if rep := e.s.GarbageCollect(); len(rep.RemovedOCSP) != 0 {
		t.Fatalf("GC removed valid responses: %v", rep.RemovedOCSP)
	}
	if n := len(ocspCacheFiles(t, cso)); n != 6 {
		t.Fatalf("%d cache files after GC, want 6", n)
	}

	// Two hours on, the leaf's response is stale: no longer offered, then collected.
	e.clock.Advance(2 * time.Hour)
	in := e.leafInfo(store.LeafV2G, true)
	if in.OCSP[0].OCSPPath != "" || in.OCSP[1].OCSPPath == "" || in.OCSP[2].OCSPPath == "" {
		t.Fatalf("after the leaf's nextUpdate: ocsp = %+v; want no path for the leaf only", in.OCSP)
	}
	rep := e.s.GarbageCollect()
	if len(rep.RemovedOCSP) != 1 || rep.RemovedOCSP[0] != leafDER {
		t.Fatalf("GC removed %v, want [%s]", rep.RemovedOCSP, leafDER)
	}
	if n := len(ocspCacheFiles(t, cso)); n != 4 {
		t.Fatalf("%d cache files after collecting the stale one, want 4", n)
	}

	// Entries as the reference left them: the leaf's response as base64 text (valid, so it is
	// rewritten as DER), mock data for a sub-CA in ca/v2g/ocsp, a .hash without its .der and an
	// entry of a certificate the store does not hold.
	now = e.clock.Now()
	fresh := ocspGoResponse(t, p.CPOSubCA2.Cert, p.CPOSubCA2, false, p.SECCLeaf.Cert.SerialNumber, ocsp.Good, now.Add(-time.Minute), now.Add(24*time.Hour))
	hashFile := func(h certs.HashData) []byte {
		return []byte(fmt.Sprintf("%s\n%s\n%s\n%s\n", h.Algorithm, h.IssuerNameHash, h.IssuerKeyHash, h.SerialNumber))
	}
	ocspWrite(t, filepath.Join(cso, "1a2b3c_ocsp.hash"), hashFile(leafHash))
	legacy := ocspWrite(t, filepath.Join(cso, "1a2b3c_ocsp.der"), []byte(certs.EncodeBase64(fresh)))
	sub2Hash := ocspHash(t, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert)
	ocspWrite(t, filepath.Join(v2g, "4d5e6f_ocsp.hash"), hashFile(sub2Hash))
	mock := ocspWrite(t, filepath.Join(v2g, "4d5e6f_ocsp.der"), []byte("OCSP_MOCK_RESPONSE_DATA"))
	orphan := ocspWrite(t, filepath.Join(v2g, "777777_ocsp.hash"), hashFile(sub2Hash))
	gone := leafHash
	gone.SerialNumber = "abcdef0123"
	ocspWrite(t, filepath.Join(v2g, "888888_ocsp.hash"), hashFile(gone))
	goneDER := ocspWrite(t, filepath.Join(v2g, "888888_ocsp.der"), fresh)

	rep = e.s.GarbageCollect()
	sort.Strings(rep.RemovedOCSP)
	wantRemoved := ocspSorted(mock, strings.TrimSuffix(orphan, ".hash")+".der", goneDER)
	if fmt.Sprint(rep.RemovedOCSP) != fmt.Sprint(wantRemoved) {
		t.Fatalf("GC removed %v, want %v", rep.RemovedOCSP, wantRemoved)
	}
	if got := ocspRead(t, legacy); !bytes.Equal(got, fresh) {
		t.Fatalf("the base64 response was not rewritten as DER")
	}
	if in := e.leafInfo(store.LeafV2G, true); in.OCSP[0].OCSPPath != legacy {
		t.Fatalf("leaf response path %q, want the migrated %q", in.OCSP[0].OCSPPath, legacy)
	}
	if f := ocspCacheFiles(t, v2g); len(f) != 0 {
		t.Fatalf("ca/v2g/ocsp still holds %v", f)
	}

	// The reference's step 3: the V2G bundle and the chain file go; without its sub-CAs the
	// leaf has no hash data either, so every response goes.
	for _, f := range []string{e.lay.V2GBundle, e.lay.SECCChain} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	rep = e.s.GarbageCollect()
	if len(rep.RemovedOCSP) != 3 {
		t.Fatalf("GC removed %v, want the 3 remaining responses", rep.RemovedOCSP)
	}
	if f := append(ocspCacheFiles(t, cso), ocspCacheFiles(t, v2g)...); len(f) != 0 {
		t.Fatalf("cache files left: %v", f)
	}
}

// TestOCSPCacheConcurrent runs updates and leaf info queries side by side (for the race
// detector): a reader sees either no path or a path to a complete response.
func TestOCSPCacheConcurrent(t *testing.T) {
	e := ocspNewEnv(t, testpki.Options{})
	p := e.pki
	leafHash := ocspHash(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	responses := make([][]byte, 4)
	for i := range responses {
		responses[i] = e.good(p.SECCLeaf, p.CPOSubCA2)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if err := e.s.UpdateOCSPCache(leafHash, base64.StdEncoding.EncodeToString(responses[(i+j)%len(responses)])); err != nil {
					errs <- err
				}
			}
		}(i)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				res := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true)
				if res.Info == nil || len(res.Info.OCSP) != 3 {
					errs <- fmt.Errorf("leaf info %+v", res)
					continue
				}
				if path := res.Info.OCSP[0].OCSPPath; path != "" {
					der, err := os.ReadFile(path)
					if err != nil {
						errs <- err
					} else if _, err := ocsp.ParseResponseForCert(der, p.SECCLeaf.Cert, p.CPOSubCA2.Cert); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(ocspCacheFiles(t, e.path("client/cso/ocsp"))); n != 2 {
		t.Fatalf("%d cache files, want one pair", n)
	}
}
