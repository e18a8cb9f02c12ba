package store_test

// Leaf install (update_leaf_certificate), leaf selection (get_leaf_certificate_info,
// get_all_valid_certificates_info, get_leaf_expiry_days_count), the V2GCertificateChain listing
// and key interoperability with OpenSSL. Reference scenarios: T05, T06, T11–T14, T27, T29, T30, T32.

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

var (
	seccSingleName = regexp.MustCompile(`^client/cso/SECC_LEAF_([0-9]{8}T[0-9]{6}Z_[0-9a-f]{8})\.pem$`)
	seccChainName  = regexp.MustCompile(`^client/cso/CPO_CERT_SECC_LEAF_CHAIN_([0-9]{8}T[0-9]{6}Z_[0-9a-f]{8})\.pem$`)
	csmsSingleName = regexp.MustCompile(`^client/csms/CSMS_LEAF_([0-9]{8}T[0-9]{6}Z_[0-9a-f]{8})\.pem$`)
)

// requireCerts fails unless the file holds exactly want, in order.
func requireCerts(t *testing.T, path string, want ...*testpki.Issued) {
	t.Helper()
	got := fileCerts(t, path)
	if len(got) != len(want) {
		t.Fatalf("%s holds %d certificates, want %d", path, len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i].Cert) {
			t.Fatalf("%s: certificate %d is %q, want %q", path, i, got[i].Subject, want[i].Cert.Subject)
		}
	}
}

func leafInfo(t *testing.T, e *env, lt store.LeafType) *store.CertificateInfo {
	t.Helper()
	res := e.s.GetLeafCertificateInfo(lt, store.EncodingPEM, false)
	if res.Status != store.InfoAccepted || res.Info == nil {
		t.Fatalf("get_leaf_certificate_info(%s) = %s, want Accepted\nlog:\n%s", lt, res.Status, e.logs)
	}
	return res.Info
}

func TestUpdateLeafWritesSingleAndOrderedChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	p := e.pki
	leaf := e.issueSECC("SECCCert2", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	keyPath := e.path("client/cso/SECC_NEW.key")
	writeKeyFile(t, keyPath, leaf.Key, "")
	before := snapshot(t, e.root)
	e.events.take()

	// Input order scrambled and with the root: the chain file must hold the verified path,
	// leaf first, without the root (the reference wrote the input as it came).
	in := pemOf(leaf.Cert, p.CPOSubCA1.Cert, p.V2GRoot.Cert, p.CPOSubCA2.Cert)
	if got := e.s.UpdateLeafCertificate(in, store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate = %s, want Accepted\n%s", got, e.logs)
	}
	added := newFiles(t, e.root, before)
	if len(added) != 2 {
		t.Fatalf("added %v, want a single file and a chain file", added)
	}
	single, chain := added[1], added[0] // CPO_CERT_... sorts before SECC_LEAF_...
	ms, mc := seccSingleName.FindStringSubmatch(single), seccChainName.FindStringSubmatch(chain)
	if ms == nil || mc == nil || ms[1] != mc[1] {
		t.Fatalf("file names %q and %q: want SECC_LEAF_<id>.pem and CPO_CERT_SECC_LEAF_CHAIN_<id>.pem with one id", single, chain)
	}
	requireCerts(t, e.path(single), leaf)
	requireCerts(t, e.path(chain), leaf, p.CPOSubCA2, p.CPOSubCA1)
	requireMode(t, e.path(single), 0o644)
	requireMode(t, e.path(chain), 0o644)

	// The files we wrote are what an OpenSSL TLS stack loads.
	out := runOpenSSL(t, nil, "verify", "-CAfile", e.layout.V2GBundle, "-untrusted", e.path(chain), e.path(chain))
	if !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify of the chain file: %s", out)
	}

	ev := e.events.take()
	if len(ev) != 1 || ev[0].Operation != store.OperationInstalled || ev[0].LeafType != store.LeafV2G || ev[0].CAType != "" || ev[0].Path != e.path(single) {
		t.Fatalf("events %+v, want one Installed V2G event for %s", ev, single)
	}

	in2 := leafInfo(t, e, store.LeafV2G)
	want := store.CertificateInfo{
		Key:               keyPath,
		CertificateRoot:   string(p.V2GRoot.CertPEM()),
		Certificate:       e.path(chain),
		CertificateSingle: e.path(single),
		CertificateCount:  3,
	}
	if in2.Key != want.Key || in2.CertificateRoot != want.CertificateRoot || in2.Certificate != want.Certificate ||
		in2.CertificateSingle != want.CertificateSingle || in2.CertificateCount != 3 || in2.Password != "" || in2.OCSP != nil {
		t.Fatalf("info %+v\nwant %+v", *in2, want)
	}
	if d := e.s.GetLeafExpiryDaysCount(store.LeafV2G); d != 365*3 && d != 366+365*2 && d != 366*2+365 {
		t.Fatalf("expiry days = %d, want about 3 years", d)
	}
}

// Reference T13 installs SECC_LEAF.pem alone and expects Accepted because its V2G bundle holds the
// sub-CAs. In the EVerest default layout the V2G bundle holds only the root and the sub-CAs live
// in the leaf directory's chain file; a renewed leaf sent without its chain must still install, and
// its chain file must be complete.
func TestUpdateLeafAloneUsesIntermediatesOfLeafDirectory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	leaf := e.issueSECC("SECCRenewed", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	writeKeyFile(t, e.path("client/cso/renewed.key"), leaf.Key, "")
	before := snapshot(t, e.root)
	if got := e.s.UpdateLeafCertificate(string(leaf.CertPEM()), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate(leaf only) = %s, want Accepted\n%s", got, e.logs)
	}
	added := newFiles(t, e.root, before)
	if len(added) != 2 || !seccChainName.MatchString(added[0]) {
		t.Fatalf("added %v, want single and chain file", added)
	}
	requireCerts(t, e.path(added[0]), leaf, e.pki.CPOSubCA2, e.pki.CPOSubCA1)
	if got := leafInfo(t, e, store.LeafV2G); got.Certificate != e.path(added[0]) || got.CertificateCount != 3 {
		t.Fatalf("info %+v, want the new chain file with 3 certificates", *got)
	}
}

// Reference T11 and T13: the station's current leaves installed again are Accepted. The reference
// wrote another copy each time; evsesec stores a certificate once, so nothing changes.
func TestUpdateLeafReinstallIsAcceptedAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{password: "123456"})
	before := snapshot(t, e.root)
	cases := []struct {
		lt  store.LeafType
		pem string
	}{
		{store.LeafCSMS, string(readFile(t, e.layout.CSMSLeafCert))}, // T11
		{store.LeafV2G, string(readFile(t, e.layout.SECCLeafCert))},  // T13
		{store.LeafV2G, string(readFile(t, e.layout.SECCChain))},
	}
	for _, c := range cases {
		if got := e.s.UpdateLeafCertificate(c.pem, c.lt); got != store.InstallAccepted {
			t.Fatalf("update_leaf_certificate(%s) = %s, want Accepted\n%s", c.lt, got, e.logs)
		}
	}
	requireUnchanged(t, e.root, before, "re-installing the current leaves")
}

func TestUpdateLeafCSMSLeafWithoutChain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	leaf := e.issueCSMS("CP002", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	keyPath := e.path("client/csms/new.key")
	writeKeyFile(t, keyPath, leaf.Key, "")
	before := snapshot(t, e.root)
	// The root in the input is dropped; a leaf right under the root has no chain file.
	if got := e.s.UpdateLeafCertificate(pemOf(leaf.Cert, e.pki.CSMSRoot.Cert), store.LeafCSMS); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate(CSMS) = %s\n%s", got, e.logs)
	}
	added := newFiles(t, e.root, before)
	if len(added) != 1 || !csmsSingleName.MatchString(added[0]) {
		t.Fatalf("added %v, want one CSMS_LEAF_<id>.pem", added)
	}
	requireCerts(t, e.path(added[0]), leaf)
	in := leafInfo(t, e, store.LeafCSMS)
	if in.Key != keyPath || in.CertificateSingle != e.path(added[0]) || in.Certificate != e.path(added[0]) ||
		in.CertificateCount != 1 || in.CertificateRoot != string(e.pki.CSMSRoot.CertPEM()) {
		t.Fatalf("info %+v", *in)
	}
}

// update_leaf_certificate rejections: exact result, nothing written, no event.
func TestUpdateLeafRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	p := e.pki
	nb, na := start.Add(-time.Hour), start.AddDate(1, 0, 0)

	withKey := func(name string, lt store.LeafType, leaf *testpki.Issued) *testpki.Issued {
		dir := "client/cso/"
		if lt == store.LeafCSMS {
			dir = "client/csms/"
		}
		writeKeyFile(t, e.path(dir+name+".key"), leaf.Key, "")
		return leaf
	}
	issue := func(ca *testpki.Issued, spec testpki.Spec) *testpki.Issued {
		t.Helper()
		c, err := ca.Issue(spec)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	v2gLeaf := withKey("v2g_in_csms", store.LeafCSMS, e.issueSECC("SECCForCSMS", nb, na))
	csmsLeaf := withKey("csms_in_v2g", store.LeafV2G, e.issueCSMS("CP003", nb, na))
	noKey := e.issueSECC("NoKey", nb, na)
	expired := withKey("expired", store.LeafV2G, e.issueSECC("Expired", start.AddDate(-2, 0, 0), start.Add(-time.Minute)))
	noDC := withKey("nodc", store.LeafV2G, issue(p.CPOSubCA2, testpki.Spec{CommonName: "NoDC", Organization: "EVerest test", Country: "DE", NotBefore: nb, NotAfter: na}))
	spec := seccSpec("SignOnly", nb, na)
	spec.KeyUsage = x509.KeyUsageDigitalSignature // no keyAgreement
	signOnly := withKey("signonly", store.LeafV2G, issue(p.CPOSubCA2, spec))
	spec = seccSpec("P384", nb, na)
	spec.KeyAlgorithm = testpki.KeyP384
	p384 := withKey("p384", store.LeafV2G, issue(p.CPOSubCA2, spec))
	spec = seccSpec("CALeaf", nb, na)
	spec.IsCA = true
	caLeaf := withKey("caleaf", store.LeafV2G, issue(p.CPOSubCA1, spec))
	// A look-alike of the V2G root (reference T14): same DN and serial, another key.
	lookalike, err := testpki.SelfSigned(testpki.Spec{CommonName: "V2GRootCA", Organization: testpki.Organization,
		Country: testpki.Country, DomainComponent: "V2G", IsCA: true, MaxPathLen: -1, Serial: p.V2GRoot.Cert.SerialNumber})
	if err != nil {
		t.Fatal(err)
	}
	withKey("lookalike", store.LeafV2G, lookalike)
	// A leaf whose signature was damaged in transit.
	tampered := withKey("tampered", store.LeafV2G, e.issueSECC("Tampered", nb, na))
	der := append([]byte{}, tampered.Cert.Raw...)
	der[len(der)-5] ^= 0x01 // inside the ECDSA signature value
	tamperedCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	unrelatedRoot, err := testpki.SelfSigned(testpki.Spec{CommonName: "Elsewhere", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	unrelated := withKey("unrelated", store.LeafV2G, issue(unrelatedRoot, seccSpec("Unrelated", nb, na)))
	badB64 := "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"
	truncated := string(v2gLeaf.CertPEM()[:200]) + "\n-----END CERTIFICATE-----\n"

	chain := func(leaf *testpki.Issued) string { return pemOf(leaf.Cert, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert) }
	cases := []struct {
		name string
		in   string
		lt   store.LeafType
		want store.InstallResult
	}{
		{"T12 not PEM", "InvalidCertificate", store.LeafCSMS, store.InstallInvalidFormat},
		{"empty", "", store.LeafV2G, store.InstallInvalidFormat},
		{"bad base64", badB64, store.LeafV2G, store.InstallInvalidFormat},
		{"truncated PEM", truncated, store.LeafV2G, store.InstallInvalidFormat},
		{"only a key", string(readFile(t, e.layout.SECCLeafKey)), store.LeafV2G, store.InstallInvalidFormat},
		{"MF type", chain(v2gLeaf), store.LeafMF, store.InstallWriteError},
		{"MO type", chain(v2gLeaf), store.LeafMO, store.InstallWriteError},
		{"V2G leaf as CSMS: CSMS domain does not hold the V2G root", chain(v2gLeaf), store.LeafCSMS, store.InstallNoRootCertificate},
		{"CSMS leaf as V2G", pemOf(csmsLeaf.Cert), store.LeafV2G, store.InstallNoRootCertificate},
		{"key not on disk", chain(noKey), store.LeafV2G, store.InstallWriteError},
		{"T30 expired", chain(expired), store.LeafV2G, store.InstallExpired},
		{"no DC=CPO", chain(noDC), store.LeafV2G, store.InstallInvalidCommonName},
		{"no keyAgreement", chain(signOnly), store.LeafV2G, store.InstallInvalidFormat},
		{"P-384 SECC key", chain(p384), store.LeafV2G, store.InstallInvalidFormat},
		{"CA certificate as SECC leaf", pemOf(caLeaf.Cert, p.CPOSubCA1.Cert), store.LeafV2G, store.InstallInvalidFormat},
		// T14: the reference maps OpenSSL's "self-signed certificate" to Unknown, then InvalidFormat.
		{"T14 self-signed look-alike of the root", string(lookalike.CertPEM()), store.LeafV2G, store.InstallInvalidFormat},
		{"damaged signature", pemOf(tamperedCert, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert), store.LeafV2G, store.InstallInvalidSignature},
		{"unrelated root", pemOf(unrelated.Cert), store.LeafV2G, store.InstallNoRootCertificate},
	}
	before := snapshot(t, e.root)
	e.events.take()
	for _, c := range cases {
		if got := e.s.UpdateLeafCertificate(c.in, c.lt); got != c.want {
			t.Errorf("%s: update_leaf_certificate = %s, want %s", c.name, got, c.want)
		}
		requireUnchanged(t, e.root, before, c.name)
	}
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("rejected installs sent events %+v", ev)
	}

	// With the profile check off, the leaf without DC=CPO installs.
	e.cfg.SECCLeafProfile = "none"
	e.open()
	if got := e.s.UpdateLeafCertificate(chain(noDC), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("secc_leaf_profile none: %s, want Accepted", got)
	}
}

// The JSON path of update_leaf_certificate: argument errors never reach the store.
func TestUpdateLeafBadArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	before := snapshot(t, e.root)
	leafPEM := string(readFile(t, e.layout.SECCChain))
	for _, args := range []any{
		map[string]any{"certificate_type": "V2G"},
		map[string]any{"certificate_chain": leafPEM},
		map[string]any{"certificate_chain": leafPEM, "certificate_type": "SECC"},
		map[string]any{"certificate_chain": leafPEM, "certificate_type": "v2g"},
		map[string]any{"certificate_chain": 42, "certificate_type": "V2G"},
		map[string]any{"certificate_chain": leafPEM, "certificate_type": nil},
		"[1,2]",
		"{",
	} {
		if err := e.call("update_leaf_certificate", args, nil); !isArgError(err) {
			t.Errorf("update_leaf_certificate %v: err %v, want an argument error", args, err)
		}
	}
	var res string
	if err := e.call("update_leaf_certificate", map[string]any{"certificate_chain": "x", "certificate_type": "V2G"}, &res); err != nil || res != "InvalidFormat" {
		t.Fatalf("garbage chain: %q, %v; want InvalidFormat", res, err)
	}
	if err := e.call("update_leaf_certificate", map[string]any{"certificate_chain": leafPEM, "certificate_type": "MO"}, &res); err != nil || res != "WriteError" {
		t.Fatalf("MO: %q, %v; want WriteError", res, err)
	}
	requireUnchanged(t, e.root, before, "bad update_leaf_certificate arguments")
}

// Reference T32: a full store refuses leaves before looking at them. Both limits count (the
// reference's byte limit never worked).
func TestUpdateLeafStoreFull(t *testing.T) {
	t.Parallel()
	for _, limit := range []string{"bytes", "entries"} {
		t.Run(limit, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			start := e.clock.Now()
			leaf := e.issueSECC("Full", start.Add(-time.Hour), start.AddDate(3, 0, 0))
			writeKeyFile(t, e.path("client/cso/full.key"), leaf.Key, "")
			n, size := e.s.Usage()
			if limit == "bytes" {
				e.cfg.MaxStoreBytes = size + 1 // not full: limit not reached
			} else {
				e.cfg.MaxStoreEntries = n
			}
			e.open()
			if got := e.s.UpdateLeafCertificate("garbage", store.LeafV2G); got != store.InstallInvalidFormat {
				t.Fatalf("just below the limit: %s, want InvalidFormat", got)
			}
			if limit == "bytes" {
				e.cfg.MaxStoreBytes = size
			} else {
				e.cfg.MaxStoreEntries = n - 1
			}
			e.open()
			before := snapshot(t, e.root)
			for _, in := range []string{"garbage", pemOf(leaf.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert)} {
				if got := e.s.UpdateLeafCertificate(in, store.LeafV2G); got != store.InstallStoreFull {
					t.Fatalf("full store (%s): %s, want CertificateStoreMaxLengthExceeded", limit, got)
				}
			}
			if got := e.s.InstallCACertificate(string(e.pki.MORoot.CertPEM()), store.CAV2G); got != store.InstallStoreFull {
				t.Fatalf("install_ca_certificate on a full store: %s", got)
			}
			requireUnchanged(t, e.root, before, "install into a full store")
		})
	}
}

// Reference T29: a leaf that starts in the future installs, is not used before it starts, and
// is used once it is valid. Its root shares DN and serial with the current root (different key).
func TestFutureLeafAcceptedAndUsedOnceValid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{password: "123456"})
	start := e.clock.Now()
	p := e.pki
	before := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
	if before.Status != store.InfoAccepted {
		t.Fatalf("before: %s", before.Status)
	}
	newRoot, err := testpki.SelfSigned(testpki.Spec{CommonName: "V2GRootCA", Organization: testpki.Organization,
		Country: testpki.Country, DomainComponent: "V2G", IsCA: true, MaxPathLen: -1,
		Serial: p.V2GRoot.Cert.SerialNumber, NotBefore: start.Add(-time.Hour), NotAfter: start.AddDate(200, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.s.InstallCACertificate(string(newRoot.CertPEM()), store.CAV2G); got != store.InstallAccepted {
		t.Fatalf("install future root: %s", got)
	}
	future, err := newRoot.Issue(seccSpec("SECCCert", start.AddDate(100, 0, 0), start.AddDate(101, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := e.path("client/cso/SECC_LEAF_FUTURE.key")
	keyPEM, err := future.KeyPEM("123456") // legacy encrypted EC PRIVATE KEY, as the fixture
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyPath, keyPEM, 0o600)
	if got := e.s.UpdateLeafCertificate(string(future.CertPEM()), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate(future leaf) = %s, want Accepted\n%s", got, e.logs)
	}
	after := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
	if after.Status != store.InfoAccepted || after.Info.Key != before.Info.Key || after.Info.Certificate != before.Info.Certificate ||
		after.Info.CertificateSingle != before.Info.CertificateSingle || after.Info.Password != "123456" || before.Info.Password != "123456" {
		t.Fatalf("the future leaf changed the selection:\nbefore %+v\nafter  %+v", *before.Info, *after.Info)
	}
	if got := e.s.GetInstalledCertificates([]store.CertificateType{store.V2GCertificateChain}); len(got.Chains) != 2 {
		t.Fatalf("V2GCertificateChain lists %d leaves, want 2 (the future one too)", len(got.Chains))
	}

	// A century later the old PKI has expired and the future leaf is the one.
	e.clock.Set(start.AddDate(100, 0, 1))
	in := leafInfo(t, e, store.LeafV2G)
	if in.Key != keyPath || in.CertificateRoot != string(newRoot.CertPEM()) {
		t.Fatalf("a century later: info %+v, want the future leaf with key %s under the new root", *in, keyPath)
	}
}

// Reference T30 with the reference's own fixture: an expired leaf is Expired even though no
// root for it is installed, and its legacy-encrypted key (openssl ec -aes-128-cbc) is readable.
func TestExpiredFixtureLeafRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{password: "123456"})
	fixture := filepath.Join("..", "keys", "testdata")
	keyPath := e.path("client/cso/SECC_LEAF_EXPIRED.key")
	writeFile(t, keyPath, readFile(t, filepath.Join(fixture, "SECC_LEAF_EXPIRED.key")), 0o600)
	leafPEM := string(readFile(t, filepath.Join(fixture, "SECC_LEAF_EXPIRED.pem")))
	before := snapshot(t, e.root)
	if got := e.s.UpdateLeafCertificate(leafPEM, store.LeafV2G); got != store.InstallExpired {
		t.Fatalf("update_leaf_certificate(expired fixture) = %s, want Expired", got)
	}
	requireUnchanged(t, e.root, before, "expired leaf")
	// The fixture key is the leaf's key: placed by hand next to its certificate, the expired leaf
	// is listed, and selection passes it over as expired.
	writeFile(t, e.path("client/cso/SECC_LEAF_EXPIRED.pem"), []byte(leafPEM), 0o644)
	k := loadKey(t, keyPath, "123456")
	if c := fileCerts(t, e.path("client/cso/SECC_LEAF_EXPIRED.pem"))[0]; !keys.Matches(c, k.Public()) {
		t.Fatal("fixture key does not match its certificate")
	}
	in := leafInfo(t, e, store.LeafV2G)
	if in.Key != e.layout.SECCLeafKey {
		t.Fatalf("selected %s, want the valid leaf's key", in.Key)
	}
	if err := os.Remove(e.layout.SECCLeafKey); err != nil {
		t.Fatal(err)
	}
	e.logs.Reset()
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoPrivateKeyNotFound {
		t.Fatalf("valid leaf without key, expired leaf with key: %s, want PrivateKeyNotFound", got.Status)
	}
	if !strings.Contains(e.logs.String(), "leaf passed over: expired") {
		t.Fatalf("the expired candidate is not logged:\n%s", e.logs)
	}
	requireNoSecretsLogged(t, e.logs.String(), "123456", keyPath)
}

// Selection: newest valid leaf by notAfter, ties by the later notBefore, then the fingerprint;
// never by file name. Every candidate passed over is logged with its reason.
func TestLeafSelectionNewestValidWithKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	nb := start.Add(-time.Hour)

	exp := e.issueSECC("Expired", start.AddDate(-3, 0, 0), start.Add(-time.Hour))
	e.placeLeaf(store.LeafV2G, "expired", exp)
	fut := e.issueSECC("Future", start.Add(time.Hour), start.AddDate(9, 0, 0))
	e.placeLeaf(store.LeafV2G, "future", fut)
	noKey := e.issueSECC("NoKey", nb, start.AddDate(8, 0, 0))
	writeFile(t, e.path("client/cso/nokey.pem"), noKey.CertPEM(), 0o644)
	otherRoot, err := testpki.SelfSigned(testpki.Spec{CommonName: "Other", IsCA: true, MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	untrusted, err := otherRoot.Issue(seccSpec("Untrusted", nb, start.AddDate(7, 0, 0)))
	if err != nil {
		t.Fatal(err)
	}
	e.placeLeaf(store.LeafV2G, "untrusted", untrusted)
	// a (earlier notBefore) and z (later notBefore) share notAfter: z wins though "a" sorts first.
	a := e.issueSECC("A", start.Add(-2*time.Hour), start.AddDate(5, 0, 0))
	_, aKey := e.placeLeaf(store.LeafV2G, "a", a)
	z := e.issueSECC("Z", start.Add(-time.Hour), start.AddDate(5, 0, 0))
	_, zKey := e.placeLeaf(store.LeafV2G, "z", z)

	in := leafInfo(t, e, store.LeafV2G)
	if in.Key != zKey {
		t.Fatalf("selected %s, want %s (same notAfter, later notBefore)", in.Key, zKey)
	}
	// Every candidate newer than the chosen leaf was passed over with its reason in the log
	// (older ones are not looked at).
	logs := e.logs.String()
	for _, want := range []string{"leaf passed over: not yet valid", "leaf passed over: untrusted", "leaf passed over: no matching private key"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	// Once z's key is gone, a is next; once every valid leaf is gone, the expired one is
	// passed over as expired.
	if err := os.Remove(zKey); err != nil {
		t.Fatal(err)
	}
	if in := leafInfo(t, e, store.LeafV2G); in.Key != aKey {
		t.Fatalf("without z's key: selected %s, want %s", in.Key, aKey)
	}
	e.logs.Reset()
	e.clock.Set(start.AddDate(10, 0, 1))
	if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoNotFoundValid {
		t.Fatalf("ten years later: %s, want NotFoundValid", got.Status)
	}
	if !strings.Contains(e.logs.String(), "leaf passed over: expired") {
		t.Fatalf("expired candidates not logged:\n%s", e.logs)
	}
	e.clock.Set(start)
	if err := os.Remove(aKey); err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, zKey, z.Key, "")

	// Identical validity: the smaller SHA-256 fingerprint wins, whatever the file names.
	c1 := e.issueSECC("Tie1", nb, start.AddDate(6, 0, 0))
	c2 := e.issueSECC("Tie2", nb, start.AddDate(6, 0, 0))
	first, second := c1, c2
	if fp1, fp2 := sha256.Sum256(c1.Cert.Raw), sha256.Sum256(c2.Cert.Raw); string(fp2[:]) < string(fp1[:]) {
		first, second = c2, c1
	}
	_, firstKey := e.placeLeaf(store.LeafV2G, "tie_b", first)
	e.placeLeaf(store.LeafV2G, "tie_a", second)
	for i := 0; i < 2; i++ {
		if in := leafInfo(t, e, store.LeafV2G); in.Key != firstKey {
			t.Fatalf("tie: selected %s, want %s", in.Key, firstKey)
		}
		e.open() // a restart reads the directory again
	}
}

func TestLeafInfoStatuses(t *testing.T) {
	t.Parallel()
	t.Run("NotFound without leaf files; Rejected for MF and MO", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		for _, f := range []string{e.layout.CSMSLeafCert, e.layout.CSMSLeafKey} {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.s.GetLeafCertificateInfo(store.LeafCSMS, store.EncodingPEM, false); got.Status != store.InfoNotFound || got.Info != nil {
			t.Fatalf("empty CSMS directory: %+v, want NotFound", got)
		}
		all := e.s.GetAllValidCertificatesInfo(store.LeafCSMS, store.EncodingPEM, false)
		if all.Status != store.InfoNotFound || len(all.Info) != 0 {
			t.Fatalf("all valid, empty directory: %+v", all)
		}
		for _, lt := range []store.LeafType{store.LeafMF, store.LeafMO} {
			if got := e.s.GetLeafCertificateInfo(lt, store.EncodingPEM, false); got.Status != store.InfoRejected {
				t.Fatalf("%s: %s, want Rejected", lt, got.Status)
			}
			if got := e.s.GetAllValidCertificatesInfo(lt, store.EncodingPEM, false); got.Status != store.InfoRejected {
				t.Fatalf("all valid %s: %s, want Rejected", lt, got.Status)
			}
			if d := e.s.GetLeafExpiryDaysCount(lt); d != 0 {
				t.Fatalf("expiry days of %s = %d", lt, d)
			}
		}
	})
	t.Run("NotFoundValid when every leaf is expired or not yet valid", func(t *testing.T) {
		e := newEnv(t, envOptions{})
		start := e.clock.Now()
		e.clock.Set(start.AddDate(2, 0, 1)) // the leaves live two years
		for _, lt := range []store.LeafType{store.LeafV2G, store.LeafCSMS} {
			if got := e.s.GetLeafCertificateInfo(lt, store.EncodingPEM, false); got.Status != store.InfoNotFoundValid {
				t.Fatalf("%s after expiry: %s, want NotFoundValid", lt, got.Status)
			}
			if got := e.s.GetAllValidCertificatesInfo(lt, store.EncodingPEM, false); got.Status != store.InfoNotFoundValid || len(got.Info) != 0 {
				t.Fatalf("all valid %s after expiry: %+v", lt, got)
			}
			if d := e.s.GetLeafExpiryDaysCount(lt); d != 0 {
				t.Fatalf("expiry days after expiry = %d", d)
			}
		}
		e.clock.Set(start.Add(-2 * time.Hour)) // before the leaves start
		if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoNotFoundValid {
			t.Fatalf("before the leaves start: %s, want NotFoundValid", got.Status)
		}
	})
	t.Run("PrivateKeyNotFound without key or with the wrong password", func(t *testing.T) {
		e := newEnv(t, envOptions{password: "123456"})
		e.cfg.PrivateKeyPassword = "wrong"
		e.open()
		if got := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); got.Status != store.InfoPrivateKeyNotFound {
			t.Fatalf("wrong password: %s, want PrivateKeyNotFound", got.Status)
		}
		if !strings.Contains(e.logs.String(), "could not be decrypted") {
			t.Fatalf("the log does not say the key could not be decrypted:\n%s", e.logs)
		}
		requireNoSecretsLogged(t, e.logs.String(), "123456", e.layout.SECCLeafKey)
		requireNoSecretsLogged(t, e.logs.String(), "wrong")
		e.cfg.PrivateKeyPassword = "123456"
		e.open()
		if err := os.Remove(e.layout.CSMSLeafKey); err != nil {
			t.Fatal(err)
		}
		if got := e.s.GetLeafCertificateInfo(store.LeafCSMS, store.EncodingPEM, false); got.Status != store.InfoPrivateKeyNotFound {
			t.Fatalf("no key: %s, want PrivateKeyNotFound", got.Status)
		}
		if got := e.s.GetAllValidCertificatesInfo(store.LeafCSMS, store.EncodingPEM, false); got.Status != store.InfoPrivateKeyNotFound {
			t.Fatalf("all valid, no key: %s, want PrivateKeyNotFound", got.Status)
		}
	})
}

func TestLeafExpiryDaysCount(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	notAfter := e.pki.SECCLeaf.Cert.NotAfter
	for _, c := range []struct {
		left time.Duration
		want int
	}{
		{10*24*time.Hour + 23*time.Hour, 10},
		{24 * time.Hour, 1},
		{23 * time.Hour, 0}, // truncated, as the reference
		{time.Second, 0},
	} {
		e.clock.Set(notAfter.Add(-c.left))
		if got := e.s.GetLeafExpiryDaysCount(store.LeafV2G); got != c.want {
			t.Errorf("%v left: %d days, want %d", c.left, got, c.want)
		}
		var viaJSON int
		if err := e.call("get_leaf_expiry_days_count", map[string]any{"certificate_type": "V2G"}, &viaJSON); err != nil || viaJSON != c.want {
			t.Errorf("JSON: %d, %v", viaJSON, err)
		}
	}
	for _, args := range []any{map[string]any{}, map[string]any{"certificate_type": "X"}} {
		if err := e.call("get_leaf_expiry_days_count", args, nil); !isArgError(err) {
			t.Errorf("%v: err %v, want an argument error", args, err)
		}
	}
}

// Reference T05: two CSMS leaves under two roots; get_all_valid_certificates_info gives the
// newest leaf under each root, with the root's PEM. A third, older leaf under the first root is
// not listed.
func TestAllValidCertificatesInfoOnePerRoot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	root2, err := testpki.SelfSigned(testpki.Spec{CommonName: "CSMSRootGridSync", Organization: "GridSync", Country: "DE",
		IsCA: true, MaxPathLen: -1, NotBefore: start.Add(-time.Hour), NotAfter: start.AddDate(10, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.s.InstallCACertificate(string(root2.CertPEM()), store.CACSMS); got != store.InstallAccepted {
		t.Fatalf("install second CSMS root: %s", got)
	}
	grid, err := root2.Issue(testpki.Spec{CommonName: "GridSyncLeaf", NotBefore: start.Add(-time.Hour), NotAfter: start.AddDate(4, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	gridCert, gridKey := e.placeLeaf(store.LeafCSMS, "CSMS_LEAF_GRIDSYNC", grid)
	older := e.issueCSMS("Older", start.Add(-time.Hour), start.AddDate(1, 0, 0))
	e.placeLeaf(store.LeafCSMS, "older", older)

	res := e.s.GetAllValidCertificatesInfo(store.LeafCSMS, store.EncodingPEM, false)
	if res.Status != store.InfoAccepted || len(res.Info) != 2 {
		t.Fatalf("all valid CSMS: %s with %d entries, want Accepted with 2\n%s", res.Status, len(res.Info), e.logs)
	}
	// Newest notAfter first: GridSync (4 years), then the CSMS leaf (2 years).
	if in := res.Info[0]; in.CertificateSingle != gridCert || in.Key != gridKey || in.CertificateRoot != string(root2.CertPEM()) || in.CertificateCount != 1 {
		t.Fatalf("entry 0: %+v", in)
	}
	if in := res.Info[1]; in.CertificateSingle != e.layout.CSMSLeafCert || in.Key != e.layout.CSMSLeafKey || in.CertificateRoot != string(e.pki.CSMSRoot.CertPEM()) {
		t.Fatalf("entry 1: %+v", in)
	}
	var viaJSON store.CertificateFullInfoResult
	if err := e.call("get_all_valid_certificates_info", map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": false}, &viaJSON); err != nil || len(viaJSON.Info) != 2 {
		t.Fatalf("JSON: %+v, %v", viaJSON, err)
	}
	for _, args := range []any{
		map[string]any{"certificate_type": "CSMS"},
		map[string]any{"encoding": "PEM"},
		map[string]any{"certificate_type": "CSMS", "encoding": "pem"},
		map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": "yes"},
		map[string]any{"certificate_type": "CSMS", "encoding": "PEM"},
		map[string]any{"certificate_type": "CSMS", "encoding": "PEM", "include_ocsp": nil},
	} {
		if err := e.call("get_all_valid_certificates_info", args, nil); !isArgError(err) {
			t.Errorf("%v: err %v, want an argument error", args, err)
		}
		if err := e.call("get_leaf_certificate_info", args, nil); !isArgError(err) {
			t.Errorf("get_leaf_certificate_info %v: err %v, want an argument error", args, err)
		}
	}
}

// Reference T06 and T27, and DESIGN §3 #8: every SECC leaf is listed as a V2GCertificateChain,
// leaf first with its sub-CAs nearest first and without the root; a leaf stored as single and
// chain file is listed once; expired and future leaves are listed too (the reference dropped
// them, so they could not be named for deletion).
func TestInstalledV2GCertificateChains(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	p := e.pki
	start := e.clock.Now()
	want := []certs.HashData{hashOf(t, p.CPOSubCA2.Cert, p.CPOSubCA1.Cert), hashOf(t, p.CPOSubCA1.Cert, p.V2GRoot.Cert)}

	res := e.s.GetInstalledCertificates([]store.CertificateType{store.V2GCertificateChain})
	if res.Status != store.InstalledAccepted || len(res.Chains) != 1 {
		t.Fatalf("T27: %+v, want one chain", res)
	}
	c := res.Chains[0]
	if c.CertificateType != store.V2GCertificateChain || !c.HashData.Equal(hashOf(t, p.SECCLeaf.Cert, p.CPOSubCA2.Cert)) ||
		len(c.Children) != 2 || !c.Children[0].Equal(want[0]) || !c.Children[1].Equal(want[1]) {
		t.Fatalf("T27 chain %+v, want SECCCert with children CPOSubCA2, CPOSubCA1", c)
	}

	// T06: a second leaf stored only as a single file gets its sub-CAs from the chain file of
	// the first. Plus an expired and a future leaf.
	grid := e.issueSECC("SECCGridSyncCert", start.Add(-time.Hour), start.AddDate(1, 0, 0))
	e.placeLeaf(store.LeafV2G, "SECC_LEAF_GRIDSYNC", grid)
	exp := e.issueSECC("Expired", start.AddDate(-2, 0, 0), start.Add(-time.Minute))
	e.placeLeaf(store.LeafV2G, "expired", exp)
	fut := e.issueSECC("Future", start.AddDate(1, 0, 0), start.AddDate(3, 0, 0))
	e.placeLeaf(store.LeafV2G, "future", fut)
	res = e.s.GetInstalledCertificates([]store.CertificateType{store.V2GCertificateChain})
	if res.Status != store.InstalledAccepted || len(res.Chains) != 4 {
		t.Fatalf("T06: %d chains, want 4", len(res.Chains))
	}
	var leaves []certs.HashData
	for _, c := range res.Chains {
		if len(c.Children) != 2 || !c.Children[0].Equal(want[0]) || !c.Children[1].Equal(want[1]) {
			t.Fatalf("chain %+v: children are not CPOSubCA2, CPOSubCA1", c)
		}
		leaves = append(leaves, c.HashData)
	}
	for _, l := range []*testpki.Issued{p.SECCLeaf, grid, exp, fut} {
		h := hashOf(t, l.Cert, p.CPOSubCA2.Cert)
		if !slices.ContainsFunc(leaves, h.Equal) {
			t.Errorf("leaf %s not listed", l.Cert.Subject.CommonName)
		}
	}
	if n := e.s.GetCountOfInstalledCertificates([]store.CertificateType{store.V2GCertificateChain}); n != 7 {
		t.Errorf("count of V2GCertificateChain = %d, want 7 (3 in the chain file and 4 single files)", n)
	}
}

// DER encoding: the paths point to DER copies evsesec writes; the key copy is 0600 and loads in
// OpenSSL (with -passin when a password is configured).
func TestLeafInfoDER(t *testing.T) {
	t.Parallel()
	for _, password := range []string{"", "123456"} {
		t.Run("password="+password, func(t *testing.T) {
			e := newEnv(t, envOptions{password: password})
			res := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingDER, false)
			if res.Status != store.InfoAccepted {
				t.Fatalf("DER: %s", res.Status)
			}
			in := res.Info
			for _, p := range []string{in.Key, in.Certificate, in.CertificateSingle} {
				if filepath.Dir(p) != e.path("client/cso/der") || filepath.Ext(p) != ".der" {
					t.Fatalf("DER path %s is not a .der file in client/cso/der", p)
				}
			}
			requireCerts(t, in.CertificateSingle, e.pki.SECCLeaf)
			requireCerts(t, in.Certificate, e.pki.SECCLeaf, e.pki.CPOSubCA2, e.pki.CPOSubCA1)
			if in.CertificateCount != 3 || in.Password != password {
				t.Fatalf("info %+v", *in)
			}
			requireMode(t, in.Key, 0o600)
			if strings.Contains(string(readFile(t, in.Key)), "-----") {
				t.Fatal("DER key copy is PEM")
			}
			runOpenSSL(t, nil, "x509", "-inform", "DER", "-in", in.CertificateSingle, "-noout")
			args := []string{"pkey", "-inform", "DER", "-in", in.Key, "-pubout"}
			if password != "" {
				args = append(args, "-passin", "pass:"+password)
			}
			pub := runOpenSSL(t, nil, args...)
			certPub := runOpenSSL(t, nil, "x509", "-in", e.layout.SECCLeafCert, "-noout", "-pubkey")
			if strings.TrimSpace(pub) != strings.TrimSpace(certPub) {
				t.Fatalf("DER key copy does not hold the leaf's key:\n%s\n%s", pub, certPub)
			}
			if password != "" {
				if _, err := tryOpenSSL(t, nil, "pkey", "-inform", "DER", "-in", in.Key, "-passin", "pass:"); err == nil {
					t.Fatal("the encrypted DER key copy loads without the password")
				}
			}
			// Asking again rewrites nothing.
			before := snapshot(t, e.root)
			if again := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingDER, false); again.Info == nil || again.Info.Key != in.Key || again.Info.Certificate != in.Certificate || again.Info.CertificateSingle != in.CertificateSingle {
				t.Fatalf("second DER query: %+v", again)
			}
			requireUnchanged(t, e.root, before, "a second DER query")
			// PEM queries still point at the PEM files.
			if pemInfo := leafInfo(t, e, store.LeafV2G); pemInfo.Key != e.layout.SECCLeafKey || pemInfo.Certificate != e.layout.SECCChain {
				t.Fatalf("PEM after DER: %+v", *pemInfo)
			}
			requireNoSecretsLogged(t, e.logs.String(), password, e.layout.SECCLeafKey)
		})
	}
}

// Keys written by OpenSSL in every format a charger's tree may hold: plain and encrypted PKCS#8,
// legacy encrypted SEC1 and PKCS#1. A leaf signed for each (openssl req + openssl x509 -req)
// installs and is selected with that key.
func TestOpenSSLKeysInstallAndSelect(t *testing.T) {
	t.Parallel()
	requireTool(t, "openssl")
	const pw = "123456"
	cases := []struct {
		name, format string
		lt           store.LeafType
		genKey       func(t *testing.T, path string)
	}{
		{"PKCS#8 plain", "-----BEGIN PRIVATE KEY-----", store.LeafV2G, func(t *testing.T, path string) {
			runOpenSSL(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
		}},
		{"PKCS#8 encrypted", "-----BEGIN ENCRYPTED PRIVATE KEY-----", store.LeafV2G, func(t *testing.T, path string) {
			runOpenSSL(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes-128-cbc", "-pass", "pass:"+pw, "-out", path)
		}},
		{"SEC1 plain", "-----BEGIN EC PRIVATE KEY-----\nMH", store.LeafV2G, func(t *testing.T, path string) {
			plain := runOpenSSL(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
			runOpenSSL(t, []byte(plain), "ec", "-out", path)
		}},
		{"SEC1 legacy encrypted", "Proc-Type: 4,ENCRYPTED", store.LeafV2G, func(t *testing.T, path string) {
			plain := runOpenSSL(t, nil, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
			runOpenSSL(t, []byte(plain), "ec", "-aes128", "-passout", "pass:"+pw, "-out", path)
		}},
		{"PKCS#1 legacy encrypted RSA", "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED", store.LeafCSMS, func(t *testing.T, path string) {
			plain := runOpenSSL(t, nil, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")
			runOpenSSL(t, []byte(plain), "rsa", "-aes128", "-traditional", "-passout", "pass:"+pw, "-out", path)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{password: pw})
			dir, caCert, caKey, subj, chain := "client/cso", e.layout.CPOSubCA2Cert, e.layout.CPOSubCA2Key, "/C=DE/O=EVerest test/CN=SECCOpenSSL/DC=CPO", []*testpki.Issued{e.pki.CPOSubCA2, e.pki.CPOSubCA1}
			if c.lt == store.LeafCSMS {
				dir, caCert, caKey, subj, chain = "client/csms", e.layout.CSMSRootCert, e.layout.CSMSRootKey, "/C=DE/O=EVerest test/CN=CP-RSA", nil
			}
			keyPath := e.path(dir + "/openssl.key")
			c.genKey(t, keyPath)
			if err := os.Chmod(keyPath, 0o600); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(readFile(t, keyPath)), c.format) {
				t.Fatalf("openssl wrote\n%s\nwant %q", readFile(t, keyPath), c.format)
			}
			csr := runOpenSSL(t, nil, "req", "-new", "-key", keyPath, "-passin", "pass:"+pw, "-subj", subj,
				"-addext", "keyUsage=critical,digitalSignature,keyAgreement", "-addext", "basicConstraints=critical,CA:FALSE")
			csrPath := filepath.Join(t.TempDir(), "req.csr")
			writeFile(t, csrPath, []byte(csr), 0o644)
			certPEM := runOpenSSL(t, nil, "x509", "-req", "-in", csrPath, "-CA", caCert, "-CAkey", caKey, "-passin", "pass:"+pw,
				"-copy_extensions", "copy", "-days", "1000", "-set_serial", "4660")
			in := certPEM
			for _, ca := range chain {
				in += string(ca.CertPEM())
			}
			// openssl x509 -req starts the certificate at its own now, after the test clock's.
			e.clock.Set(time.Now().Add(time.Minute))
			if got := e.s.UpdateLeafCertificate(in, c.lt); got != store.InstallAccepted {
				t.Fatalf("update_leaf_certificate = %s\n%s", got, e.logs)
			}
			info := leafInfo(t, e, c.lt)
			if info.Key != keyPath || info.Password != pw {
				t.Fatalf("selected key %s (password %q), want %s", info.Key, info.Password, keyPath)
			}
			if got := fileCerts(t, info.CertificateSingle)[0]; !strings.Contains(got.Subject.String(), "CN=") || got.SerialNumber.Int64() != 4660 {
				t.Fatalf("selected certificate %v", got.Subject)
			}
			requireNoSecretsLogged(t, e.logs.String(), pw, keyPath)
		})
	}
}

// The leaf lookups on the JSON path: field names and optional fields as the interface has them.
func TestLeafInfoJSON(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	var raw map[string]any
	if err := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": "V2G", "encoding": "PEM", "include_ocsp": false}, &raw); err != nil {
		t.Fatal(err)
	}
	info, _ := raw["info"].(map[string]any)
	if raw["status"] != "Accepted" || info == nil {
		t.Fatalf("result %v", raw)
	}
	for k, want := range map[string]any{
		"key": e.layout.SECCLeafKey, "certificate": e.layout.SECCChain, "certificate_single": e.layout.SECCLeafCert,
		"certificate_count": float64(3), "certificate_root": string(e.pki.V2GRoot.CertPEM()),
	} {
		if info[k] != want {
			t.Errorf("info.%s = %v, want %v", k, info[k], want)
		}
	}
	if _, ok := info["password"]; ok {
		t.Error("password present without a configured password")
	}
	if _, ok := info["ocsp"]; ok {
		t.Error("ocsp present though not asked for")
	}
	var mf map[string]any
	if err := e.call("get_leaf_certificate_info", map[string]any{"certificate_type": "MF", "encoding": "PEM", "include_ocsp": false}, &mf); err != nil || mf["status"] != "Rejected" {
		t.Fatalf("MF: %v, %v", mf, err)
	}
	if _, ok := mf["info"]; ok {
		t.Fatal("Rejected result carries info")
	}
	// The certificate_root is a PEM the consumer can parse.
	if blk, _ := pem.Decode([]byte(info["certificate_root"].(string))); blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatal("certificate_root is not PEM")
	}
}

// A leaf present with only its chain file (a crash between the two writes of an earlier install,
// or a file placed by hand) is not "already installed": installing it again writes the single
// file and a complete chain, so the consumer gets certificate_single.
func TestUpdateLeafCompletesPartialInstall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	leaf := e.issueSECC("Partial", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	writeKeyFile(t, e.path("client/cso/partial.key"), leaf.Key, "")
	chainPEM := pemOf(leaf.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert)
	writeFile(t, e.path("client/cso/CPO_CERT_SECC_LEAF_CHAIN_partial.pem"), []byte(chainPEM), 0o644)
	if in := leafInfo(t, e, store.LeafV2G); in.CertificateSingle != "" {
		t.Fatalf("partial leaf has a single file: %+v", *in)
	}
	before := snapshot(t, e.root)
	if got := e.s.UpdateLeafCertificate(chainPEM, store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("re-install: %s", got)
	}
	added := newFiles(t, e.root, before)
	if len(added) != 2 || !seccSingleName.MatchString(added[1]) {
		t.Fatalf("added %v, want a single and a chain file", added)
	}
	in := leafInfo(t, e, store.LeafV2G)
	if in.CertificateSingle != e.path(added[1]) || in.CertificateCount != 3 {
		t.Fatalf("info %+v", *in)
	}
	// Deleting the leaf removes every file of it, the hand-placed chain included.
	if got := e.s.DeleteCertificate(hashOf(t, leaf.Cert, e.pki.CPOSubCA2.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete: %s", got)
	}
	for _, p := range append(added, "client/cso/CPO_CERT_SECC_LEAF_CHAIN_partial.pem", "client/cso/partial.key") {
		if fileExists(e.path(p)) {
			t.Fatalf("%s survived the delete", p)
		}
	}
}
