package store_test

// delete_certificate for the station's leaves: a leaf goes as a unit (single file, chain file,
// key, DER copies) and nothing else; the station's current CSMS leaf answers Failed and nothing is
// touched (OCPP 2.0.1 M04.FR.06). Reference scenario: T28.

import (
	"crypto/x509"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

func TestDeleteLeafRemovesTheUnitAndNothingElse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{password: "123456"})
	p := e.pki
	// DER copies exist once a consumer asked for DER; the key copy must not outlive the leaf.
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingDER, false); got.Status != store.InfoAccepted {
		t.Fatalf("DER query: %s", got.Status)
	}
	before := snapshot(t, e.root)
	e.events.take()
	h := hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	// Hex is matched without regard to case, through the JSON path.
	var res string
	args := map[string]any{"certificate_hash_data": map[string]any{"hash_algorithm": "SHA256",
		"issuer_name_hash": strings.ToUpper(h.IssuerNameHash), "issuer_key_hash": strings.ToUpper(h.IssuerKeyHash), "serial_number": strings.ToUpper(h.SerialNumber)}}
	if err := e.call("delete_certificate", args, &res); err != nil || res != "Accepted" {
		t.Fatalf("delete SECC leaf: %q, %v\n%s", res, err, e.logs)
	}
	added, removed, changed := treeDiff(before, snapshot(t, e.root))
	want := []string{"client/cso/CPO_CERT_CHAIN.pem", "client/cso/SECC_LEAF.key", "client/cso/SECC_LEAF.pem",
		"client/cso/der/SECC_LEAF.chain.der", "client/cso/der/SECC_LEAF.der", "client/cso/der/SECC_LEAF.key.der"}
	if !slices.Equal(removed, want) || len(added)+len(changed) != 0 {
		t.Fatalf("removed %v, added %v, changed %v\nwant removed %v", removed, added, changed, want)
	}
	ev := e.events.take()
	if len(ev) != 1 || ev[0].Operation != store.OperationDeleted || ev[0].LeafType != store.LeafV2G || ev[0].CAType != "" || ev[0].Path != e.layout.SECCLeafCert {
		t.Fatalf("events %+v", ev)
	}
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoNotFound {
		t.Fatalf("info after delete: %s, want NotFound", got.Status)
	}
	if got := e.s.GetInstalledCertificates([]store.CertificateType{store.V2GCertificateChain}); got.Status != store.InstalledNotFound || len(got.Chains) != 0 {
		t.Fatalf("installed after delete: %+v", got)
	}
	if got := e.s.DeleteCertificate(h); got != store.DeleteNotFound {
		t.Fatalf("second delete: %s, want NotFound", got)
	}
	// The CSMS leaf is untouched and still in use.
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != e.layout.CSMSLeafKey {
		t.Fatalf("CSMS leaf: %+v", *in)
	}
}

// OCPP 2.0.1 M04.FR.06: the station's current CSMS leaf cannot be deleted: Failed, nothing
// touched. Once a newer CSMS leaf is current, the old one can go.
func TestDeleteCurrentCSMSLeafFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	h := hashOf(t, e.pki.CSMSLeaf.Cert, e.pki.CSMSRoot.Cert)
	before := snapshot(t, e.root)
	e.events.take()
	if got := e.s.DeleteCertificate(h); got != store.DeleteFailed {
		t.Fatalf("delete current CSMS leaf: %s, want Failed", got)
	}
	requireUnchanged(t, e.root, before, "deleting the current CSMS leaf")
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("events %+v", ev)
	}

	newer := e.issueCSMS("CP001", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	_, newerKey := e.placeLeaf(store.LeafCSMS, "newer", newer)
	before = snapshot(t, e.root)
	if got := e.s.DeleteCertificate(h); got != store.DeleteAccepted {
		t.Fatalf("delete the old CSMS leaf: %s, want Accepted", got)
	}
	_, removed, changed := treeDiff(before, snapshot(t, e.root))
	if !slices.Equal(removed, []string{"client/csms/CSMS_LEAF.key", "client/csms/CSMS_LEAF.pem"}) || len(changed) != 0 {
		t.Fatalf("removed %v changed %v", removed, changed)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].LeafType != store.LeafCSMS || ev[0].Operation != store.OperationDeleted {
		t.Fatalf("events %+v", ev)
	}
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != newerKey {
		t.Fatalf("current CSMS leaf %+v", *in)
	}
}

// T28 adapted: the reference's PKI uses the SECC leaf as CSMS leaf too, with the CSMS domain in
// the V2G bundle file. Deleting the SECC leaf is Failed because it is the current CSMS leaf; the
// reference deleted the SECC files first and then answered Failed, evsesec touches nothing.
func TestDeleteSECCLeafThatIsAlsoTheCSMSLeaf(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{password: "123456", config: func(cfg *store.Config) {
		cfg.CSMSCABundle = "ca/v2g/V2G_ROOT_CA.pem"
		cfg.MFCABundle = "ca/v2g/V2G_ROOT_CA.pem"
	}})
	p := e.pki
	for _, f := range []string{e.layout.CSMSLeafCert, e.layout.CSMSLeafKey} {
		removeFile(t, f)
	}
	writeFile(t, e.path("client/csms/CSMS_LEAF.pem"), readFile(t, e.layout.SECCChain), 0o644)
	writeFile(t, e.path("client/csms/CSMS_LEAF.key"), readFile(t, e.layout.SECCLeafKey), 0o600)
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != e.path("client/csms/CSMS_LEAF.key") {
		t.Fatalf("CSMS leaf %+v", *in)
	}

	all := []store.CertificateType{store.V2GRootCertificate, store.MORootCertificate, store.CSMSRootCertificate, store.MFRootCertificate, store.V2GCertificateChain}
	res := e.s.GetInstalledCertificates(all)
	if res.Status != store.InstalledAccepted || len(res.Chains) != 5 {
		t.Fatalf("installed: %s with %d chains, want 5", res.Status, len(res.Chains))
	}
	wantTypes := []store.CertificateType{store.V2GRootCertificate, store.MORootCertificate, store.CSMSRootCertificate, store.MFRootCertificate, store.V2GCertificateChain}
	for i, c := range res.Chains {
		if c.CertificateType != wantTypes[i] {
			t.Fatalf("chain %d is %s, want %s", i, c.CertificateType, wantTypes[i])
		}
	}
	h := hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	if last := res.Chains[4]; !last.HashData.Equal(h) || len(last.Children) != 2 {
		t.Fatalf("V2GCertificateChain %+v", last)
	}
	before := snapshot(t, e.root)
	if got := e.s.DeleteCertificate(h); got != store.DeleteFailed {
		t.Fatalf("delete: %s, want Failed", got)
	}
	requireUnchanged(t, e.root, before, "deleting the SECC leaf that is the CSMS leaf")
}

// DESIGN §3 #8: expired and not yet valid leaves have hash data and can be deleted (the
// reference could not compute their hash). A leaf whose key another leaf shares keeps the key.
func TestDeleteExpiredFutureAndSharedKeyLeaves(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) { cfg.SECCLeafKeyDir = "client/cso_keys" }})
	start := e.clock.Now()
	p := e.pki
	exp := e.issueSECC("Expired", start.AddDate(-2, 0, 0), start.Add(-time.Hour))
	fut := e.issueSECC("Future", start.AddDate(1, 0, 0), start.AddDate(3, 0, 0))
	spec := seccSpec("SharedKey", start.Add(-time.Hour), start.AddDate(1, 0, 0))
	spec.Key = p.SECCLeaf.Key
	shared, err := p.CPOSubCA2.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path("client/cso/expired.pem"), exp.CertPEM(), 0o644)
	writeKeyFile(t, e.path("client/cso_keys/expired.key"), exp.Key, "")
	writeFile(t, e.path("client/cso/future.pem"), fut.CertPEM(), 0o644)
	writeKeyFile(t, e.path("client/cso_keys/future.key"), fut.Key, "")
	writeFile(t, e.path("client/cso/shared.pem"), shared.CertPEM(), 0o644)
	if err := renameFile(e.layout.SECCLeafKey, e.path("client/cso_keys/SECC_LEAF.key")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		leaf    *testpki.Issued
		removed []string
	}{
		{exp, []string{"client/cso/expired.pem", "client/cso_keys/expired.key"}},
		{fut, []string{"client/cso/future.pem", "client/cso_keys/future.key"}},
		{shared, []string{"client/cso/shared.pem"}}, // its key is the SECC leaf's, which stays
	} {
		before := snapshot(t, e.root)
		if got := e.s.DeleteCertificate(hashOf(t, c.leaf.Cert, p.CPOSubCA2.Cert)); got != store.DeleteAccepted {
			t.Fatalf("delete %s: %s", c.leaf.Cert.Subject.CommonName, got)
		}
		_, removed, changed := treeDiff(before, snapshot(t, e.root))
		if !slices.Equal(removed, c.removed) || len(changed) != 0 {
			t.Fatalf("delete %s removed %v changed %v, want %v", c.leaf.Cert.Subject.CommonName, removed, changed, c.removed)
		}
	}
	if in := leafInfo(t, e, store.LeafV2G); in.Key != e.path("client/cso_keys/SECC_LEAF.key") {
		t.Fatalf("SECC leaf lost its key: %+v", *in)
	}
	// SHA-384 hash data name the same certificate.
	h384, err := certs.ComputeHashData(p.SECCLeaf.Cert, p.CPOSubCA2.Cert, certs.SHA384)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.s.DeleteCertificate(h384); got != store.DeleteAccepted || fileExists(e.layout.SECCLeafCert) || fileExists(e.path("client/cso_keys/SECC_LEAF.key")) {
		t.Fatalf("delete by SHA384: %s", got)
	}
}

// Rejected deletes: exact result, nothing touched.
func TestDeleteLeafRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.pki
	before := snapshot(t, e.root)
	other, err := testpki.SelfSigned(testpki.Spec{CommonName: "Nobody", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    certs.HashData
		want store.DeleteResult
	}{
		// The sub-CAs of the default layout live only in the leaf's chain file: they go with
		// their leaf, not on their own.
		{"sub-CA inside a leaf chain file", hashOf(t, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert), store.DeleteFailed},
		{"unknown certificate", hashOf(t, other.Cert, other.Cert), store.DeleteNotFound},
		{"right hashes, wrong serial", func() certs.HashData {
			h := hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
			h.SerialNumber = "1"
			return h
		}(), store.DeleteNotFound},
		{"SHA256 hash data under SHA384", func() certs.HashData {
			h := hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
			h.Algorithm = certs.SHA384
			return h
		}(), store.DeleteNotFound},
		{"not hex", certs.HashData{Algorithm: certs.SHA256, IssuerNameHash: "zz", IssuerKeyHash: "zz", SerialNumber: "zz"}, store.DeleteNotFound},
		{"empty", certs.HashData{Algorithm: certs.SHA256}, store.DeleteNotFound},
	} {
		if got := e.s.DeleteCertificate(c.h); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
		requireUnchanged(t, e.root, before, c.name)
	}
	for _, args := range []any{
		map[string]any{},
		map[string]any{"certificate_hash_data": map[string]any{"hash_algorithm": "SHA256", "issuer_name_hash": "aa", "issuer_key_hash": "bb"}},
		map[string]any{"certificate_hash_data": map[string]any{"hash_algorithm": "MD5", "issuer_name_hash": "aa", "issuer_key_hash": "bb", "serial_number": "1"}},
		map[string]any{"certificate_hash_data": "SECC_LEAF.pem"},
	} {
		if err := e.call("delete_certificate", args, nil); !isArgError(err) {
			t.Errorf("%v: err %v, want an argument error", args, err)
		}
	}
	requireUnchanged(t, e.root, before, "bad delete_certificate arguments")
}

// Reference §9 #20: with one directory for the CSMS and the SECC leaves the reference could
// delete no leaf at all. Here the SECC leaf deletes (event for its own type only), the current
// CSMS leaf is refused, and each lookup finds its own type's leaf.
func TestDeleteWithSharedLeafDirectory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) {
		cfg.CSMSLeafCertDir, cfg.CSMSLeafKeyDir = "client/shared", "client/shared"
		cfg.SECCLeafCertDir, cfg.SECCLeafKeyDir = "client/shared", "client/shared"
	}})
	start := e.clock.Now()
	p := e.pki
	install := func(lt store.LeafType, cn string, ca *testpki.Issued, chain ...*testpki.Issued) (string, string) {
		t.Helper()
		csrPEM, key := e.generateCSR(lt, "DE", "EVerest test", cn)
		cert := signCSR(t, csrPEM, ca, start.Add(-time.Minute), start.AddDate(1, 0, 0))
		in := pemOf(cert)
		for _, c := range chain {
			in += string(c.CertPEM())
		}
		if got := e.s.UpdateLeafCertificate(in, lt); got != store.InstallAccepted {
			t.Fatalf("install %s: %s\n%s", lt, got, e.logs)
		}
		return key, in
	}
	seccKey, seccPEM := install(store.LeafV2G, "SECCCert", p.CPOSubCA2, p.CPOSubCA2, p.CPOSubCA1)
	csmsKey, csmsPEM := install(store.LeafCSMS, "CP001", p.CSMSRoot)
	if in := leafInfo(t, e, store.LeafV2G); in.Key != seccKey {
		t.Fatalf("V2G leaf key %s, want %s", in.Key, seccKey)
	}
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != csmsKey {
		t.Fatalf("CSMS leaf key %s, want %s", in.Key, csmsKey)
	}
	seccCert, _ := certs.ParseCertificates([]byte(seccPEM))
	csmsCert, _ := certs.ParseCertificates([]byte(csmsPEM))

	before := snapshot(t, e.root)
	if got := e.s.DeleteCertificate(hashOf(t, csmsCert[0], p.CSMSRoot.Cert)); got != store.DeleteFailed {
		t.Fatalf("delete current CSMS leaf: %s", got)
	}
	requireUnchanged(t, e.root, before, "deleting the current CSMS leaf")
	e.events.take()
	if got := e.s.DeleteCertificate(hashOf(t, seccCert[0], p.CPOSubCA2.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete SECC leaf: %s", got)
	}
	_, removed, changed := treeDiff(before, snapshot(t, e.root))
	if len(removed) != 3 || len(changed) != 0 || fileExists(seccKey) || !fileExists(csmsKey) {
		t.Fatalf("removed %v changed %v", removed, changed)
	}
	if ev := e.events.take(); len(ev) != 1 || ev[0].LeafType != store.LeafV2G {
		t.Fatalf("events %+v, want one Deleted V2G", ev)
	}
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != csmsKey {
		t.Fatal("CSMS leaf lost")
	}
}

// ocspResponseB64 is a good OCSP response for c signed by its issuer, base64 as OCPP carries it.
func ocspResponseB64(t *testing.T, c *x509.Certificate, issuer *testpki.Issued, now time.Time) string {
	t.Helper()
	der, err := ocsp.CreateResponse(issuer.Cert, issuer.Cert, ocsp.Response{
		Status: ocsp.Good, SerialNumber: c.SerialNumber,
		ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(7 * 24 * time.Hour),
	}, issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// The cached OCSP response of a leaf is part of the unit: deleting the leaf removes it, and the
// other leaf's cache is untouched.
func TestDeleteLeafRemovesItsOCSPResponse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.pki
	now := e.clock.Now()
	seccHash := hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)
	if err := e.s.UpdateOCSPCache(seccHash, ocspResponseB64(t, p.SECCLeaf.Cert, p.CPOSubCA2, now)); err != nil {
		t.Fatalf("update_ocsp_cache SECC: %v", err)
	}
	if err := e.s.UpdateOCSPCache(hashOf(t, p.CSMSLeaf.Cert, p.CSMSRoot.Cert), ocspResponseB64(t, p.CSMSLeaf.Cert, p.CSMSRoot, now)); err != nil {
		t.Fatalf("update_ocsp_cache CSMS: %v", err)
	}
	before := snapshot(t, e.root)
	var seccOCSP []string
	for path := range before {
		if strings.HasPrefix(path, "client/cso/ocsp/") {
			seccOCSP = append(seccOCSP, path)
		}
	}
	if len(seccOCSP) != 2 {
		t.Fatalf("SECC OCSP cache files %v, want a response and its hash file", seccOCSP)
	}
	if got := e.s.DeleteCertificate(seccHash); got != store.DeleteAccepted {
		t.Fatalf("delete: %s", got)
	}
	_, removed, changed := treeDiff(before, snapshot(t, e.root))
	want := append([]string{"client/cso/CPO_CERT_CHAIN.pem", "client/cso/SECC_LEAF.key", "client/cso/SECC_LEAF.pem"}, seccOCSP...)
	slices.Sort(want)
	if !slices.Equal(removed, want) || len(changed) != 0 {
		t.Fatalf("removed %v changed %v\nwant removed %v", removed, changed, want)
	}
}

// OCPP 2.0.1 M04.FR.06 also keeps the next CSMS leaf: a not yet valid leaf that becomes the one
// in use when it starts (a renewal installed ahead of time) is the station's certificate from
// then on, and deleting it would leave the station without one once the current leaf ends:
// Failed, nothing touched. A future leaf that never becomes the choice (it starts later and ends
// sooner than the next one) is not the station's certificate and can be deleted; once the next
// leaf is in use, the old current one can go too.
func TestDeleteNextCSMSLeafFails(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	current := e.pki.CSMSLeaf
	next := e.issueCSMS("CP001", start.Add(24*time.Hour), current.Cert.NotAfter.AddDate(0, 1, 0))
	e.placeLeaf(store.LeafCSMS, "next", next)
	never := e.issueCSMS("CP001", start.Add(48*time.Hour), start.AddDate(0, 0, 100))
	e.placeLeaf(store.LeafCSMS, "never", never)
	e.events.take()

	before := snapshot(t, e.root)
	if got := e.s.DeleteCertificate(hashOf(t, next.Cert, e.pki.CSMSRoot.Cert)); got != store.DeleteFailed {
		t.Fatalf("delete the next CSMS leaf: %s, want Failed", got)
	}
	requireUnchanged(t, e.root, before, "deleting the next CSMS leaf")
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("events %+v", ev)
	}
	if got := e.s.DeleteCertificate(hashOf(t, never.Cert, e.pki.CSMSRoot.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete a future CSMS leaf that never becomes the one in use: %s, want Accepted", got)
	}
	if fileExists(e.path("client/csms/never.pem")) || fileExists(e.path("client/csms/never.key")) {
		t.Fatal("the deleted leaf's files are still there")
	}

	// A day on, the next leaf is the one in use: it is protected as such, and the old one goes.
	e.clock.Advance(25 * time.Hour)
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != e.path("client/csms/next.key") {
		t.Fatalf("CSMS leaf in use %+v, want the next one", *in)
	}
	if got := e.s.DeleteCertificate(hashOf(t, next.Cert, e.pki.CSMSRoot.Cert)); got != store.DeleteFailed {
		t.Fatalf("delete the CSMS leaf in use: %s, want Failed", got)
	}
	if got := e.s.DeleteCertificate(hashOf(t, current.Cert, e.pki.CSMSRoot.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete the former CSMS leaf: %s, want Accepted", got)
	}
}
