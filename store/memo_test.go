package store_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// The answers that list the whole store (get_installed_certificates, get_v2g_ocsp_request_data)
// and the leaf selections are kept between calls. These tests check that a kept answer is always
// the answer a freshly opened store gives: after our own writes, after another process's, and on
// both sides of every validity boundary.

// allTypes is what OCPP asks get_installed_certificates for.
var allTypes = []store.CertificateType{store.V2GRootCertificate, store.MORootCertificate, store.CSMSRootCertificate,
	store.MFRootCertificate, store.V2GCertificateChain}

// answers are the read commands' answers, as JSON, so two stores' answers compare exactly.
type answers struct {
	Installed, RootsOnly, OCSP, Leaf, AllValid string
	Days                                       int
	CAInstalled                                bool
}

func answersOf(t *testing.T, s *store.Store) answers {
	t.Helper()
	js := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return answers{
		Installed:   js(s.GetInstalledCertificates(allTypes)),
		RootsOnly:   js(s.GetInstalledCertificates([]store.CertificateType{store.V2GRootCertificate})),
		OCSP:        js(s.GetV2GOCSPRequestData()),
		Leaf:        js(s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, true)),
		AllValid:    js(s.GetAllValidCertificatesInfo(store.LeafV2G, store.EncodingPEM, false)),
		Days:        s.GetLeafExpiryDaysCount(store.LeafV2G),
		CAInstalled: s.IsCACertificateInstalled(store.CAV2G),
	}
}

// requireFresh asks e's store (warm: it answered before) and a store opened anew on the same tree
// with the same clock, and fails unless both answer the same. It returns the answers.
func requireFresh(t *testing.T, e *env, step string) answers {
	t.Helper()
	got := answersOf(t, e.s)
	fresh, err := store.Open(e.cfg, store.Options{Clock: e.clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if want := answersOf(t, fresh); got != want {
		t.Fatalf("%s: the warm store answers\n%+v\na fresh store answers\n%+v", step, got, want)
	}
	return got
}

// ocspSECC issues a SECC leaf with an OCSP responder URL, so it is part of the OCSP request data.
func (e *env) ocspSECC(cn string, notBefore, notAfter time.Time) *testpki.Issued {
	e.t.Helper()
	spec := seccSpec(cn, notBefore, notAfter)
	spec.OCSPURLs = []string{testpki.DefaultOCSPURL}
	leaf, err := e.pki.CPOSubCA2.Issue(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return leaf
}

func answersList(t *testing.T, e *env, a answers, leaf *testpki.Issued) (installed, ocsp bool) {
	t.Helper()
	h := hashOf(t, leaf.Cert, e.pki.CPOSubCA2.Cert)
	var inst store.InstalledCertificates
	var req store.OCSPRequestDataList
	if err := json.Unmarshal([]byte(a.Installed), &inst); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(a.OCSP), &req); err != nil {
		t.Fatal(err)
	}
	for _, c := range inst.Chains {
		installed = installed || c.HashData == h
	}
	for _, r := range req.List {
		ocsp = ocsp || r.HashData == h
	}
	return installed, ocsp
}

// Our own writes: an installed leaf is listed by the next call, a deleted one is gone, an
// installed CA appears under its domain.
func TestKeptAnswersFollowOwnWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	requireFresh(t, e, "start")
	leaf := e.ocspSECC("SECCOwnWrite", start.Add(-time.Hour), start.AddDate(5, 0, 0))
	writeKeyFile(t, e.path("client/cso/own.key"), leaf.Key, "")
	requireFresh(t, e, "after a key was dropped in")
	if got := e.s.UpdateLeafCertificate(pemOf(leaf.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate = %s\n%s", got, e.logs)
	}
	a := requireFresh(t, e, "after update_leaf_certificate")
	if inst, ocsp := answersList(t, e, a, leaf); !inst || !ocsp {
		t.Fatalf("new leaf listed: installed %v, OCSP request data %v; want both", inst, ocsp)
	}
	if got := e.s.DeleteCertificate(hashOf(t, leaf.Cert, e.pki.CPOSubCA2.Cert)); got != store.DeleteAccepted {
		t.Fatalf("delete_certificate = %s", got)
	}
	a = requireFresh(t, e, "after delete_certificate")
	if inst, ocsp := answersList(t, e, a, leaf); inst || ocsp {
		t.Fatalf("deleted leaf still listed: installed %v, OCSP request data %v", inst, ocsp)
	}
	if got := e.s.InstallCACertificate(string(e.pki.MOSubCA1.CertPEM()), store.CAMO); got != store.InstallAccepted {
		t.Fatalf("install_ca_certificate = %s", got)
	}
	requireFresh(t, e, "after install_ca_certificate")
}

// Another process's writes: a second store on the same tree (another evsesec process) installs
// a leaf, and a leaf file is dropped in by hand; the first store's next call lists both.
func TestKeptAnswersFollowOtherProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	requireFresh(t, e, "start")
	other, err := store.Open(e.cfg, store.Options{Clock: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	leaf := e.ocspSECC("SECCOtherProcess", start.Add(-time.Hour), start.AddDate(5, 0, 0))
	writeKeyFile(t, e.path("client/cso/other.key"), leaf.Key, "")
	if got := other.UpdateLeafCertificate(pemOf(leaf.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert), store.LeafV2G); got != store.InstallAccepted {
		t.Fatalf("update_leaf_certificate in the other store = %s", got)
	}
	a := requireFresh(t, e, "after the other process's update_leaf_certificate")
	if inst, ocsp := answersList(t, e, a, leaf); !inst || !ocsp {
		t.Fatalf("other process's leaf listed: installed %v, OCSP request data %v; want both", inst, ocsp)
	}
	byHand := e.ocspSECC("SECCByHand", start.Add(-time.Hour), start.AddDate(6, 0, 0))
	e.placeLeaf(store.LeafV2G, "SECC_BY_HAND", byHand)
	a = requireFresh(t, e, "after a leaf was dropped in by hand")
	if inst, ocsp := answersList(t, e, a, byHand); !inst || !ocsp {
		t.Fatalf("hand-placed leaf listed: installed %v, OCSP request data %v; want both", inst, ocsp)
	}
	if err := os.Remove(filepath.Join(e.root, "client/cso/SECC_BY_HAND.pem")); err != nil {
		t.Fatal(err)
	}
	a = requireFresh(t, e, "after the hand-placed leaf was removed")
	if inst, _ := answersList(t, e, a, byHand); inst {
		t.Fatal("removed leaf still listed")
	}
	if got := other.InstallCACertificate(string(e.pki.MOSubCA1.CertPEM()), store.CAMO); got != store.InstallAccepted {
		t.Fatalf("install_ca_certificate in the other store = %s", got)
	}
	requireFresh(t, e, "after the other process's install_ca_certificate")
}

// Validity boundaries: a leaf valid through T is listed at T and not a nanosecond later; a leaf
// valid from T is selected from T on, not a nanosecond before; the same for a sub-CA that
// expires. The warm store answers like a fresh one on both sides of each boundary.
func TestKeptAnswersAtValidityBoundaries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	// The standard leaf lasts years; these end and start sooner.
	ending := e.ocspSECC("SECCEnding", start.Add(-time.Hour), start.Add(time.Hour))
	e.placeLeaf(store.LeafV2G, "SECC_ENDING", ending)
	starting := e.ocspSECC("SECCStarting", start.Add(2*time.Hour), start.AddDate(20, 0, 0))
	e.placeLeaf(store.LeafV2G, "SECC_STARTING", starting)
	steps := []struct {
		at                  time.Time
		endingIn, startIsIn bool // listed in the OCSP request data / selected as the current leaf
	}{
		{start, true, false},
		{ending.Cert.NotAfter.Add(-time.Nanosecond), true, false},
		{ending.Cert.NotAfter, true, false},
		{ending.Cert.NotAfter.Add(time.Nanosecond), false, false},
		{starting.Cert.NotBefore.Add(-time.Nanosecond), false, false},
		{starting.Cert.NotBefore, false, true},
		{starting.Cert.NotBefore.Add(time.Millisecond), false, true},
	}
	startingPath := e.path("client/cso/SECC_STARTING.pem")
	for _, st := range steps {
		e.clock.Set(st.at)
		step := st.at.Sub(start).String()
		a := requireFresh(t, e, step)
		a2 := requireFresh(t, e, step+" (again)")
		if a != a2 {
			t.Fatalf("%s: answers changed between two calls at the same time", step)
		}
		if _, ocsp := answersList(t, e, a, ending); ocsp != st.endingIn {
			t.Errorf("%s: leaf ending at %v in the OCSP request data: %v, want %v", step, ending.Cert.NotAfter, ocsp, st.endingIn)
		}
		if _, ocsp := answersList(t, e, a, starting); !ocsp {
			t.Errorf("%s: a leaf that is not valid yet belongs in the OCSP request data", step)
		}
		r := e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false)
		if selected := r.Info != nil && r.Info.CertificateSingle == startingPath; selected != st.startIsIn {
			t.Errorf("%s: leaf starting at %v selected: %v, want %v", step, starting.Cert.NotBefore, selected, st.startIsIn)
		}
	}
}

// A sub-CA that expires before its leaf takes the leaf out of the OCSP request data at the first
// instant after the sub-CA's notAfter.
func TestKeptAnswersWhenSubCAExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	subSpec := testpki.Spec{CommonName: "ShortSubCA", Organization: "EVerest test", Country: "DE", DomainComponent: "CPO",
		IsCA: true, MaxPathLen: 0, NotBefore: start.Add(-time.Hour), NotAfter: start.Add(3 * time.Hour),
		OCSPURLs: []string{testpki.DefaultOCSPURL}}
	sub, err := e.pki.CPOSubCA1.Issue(subSpec)
	if err != nil {
		t.Fatal(err)
	}
	spec := seccSpec("SECCUnderShortSub", start.Add(-time.Hour), start.Add(5*time.Hour))
	spec.OCSPURLs = []string{testpki.DefaultOCSPURL}
	leaf, err := sub.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path("client/cso/CPO_CERT_SHORT_CHAIN.pem"), []byte(pemOf(leaf.Cert, sub.Cert, e.pki.CPOSubCA1.Cert)), 0o644)
	writeKeyFile(t, e.path("client/cso/SHORT.key"), leaf.Key, "")
	subHash := func(a answers) bool {
		var req store.OCSPRequestDataList
		if err := json.Unmarshal([]byte(a.OCSP), &req); err != nil {
			t.Fatal(err)
		}
		h, err := certs.ComputeHashData(sub.Cert, e.pki.CPOSubCA1.Cert, certs.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range req.List {
			if r.HashData == h {
				return true
			}
		}
		return false
	}
	for _, st := range []struct {
		at   time.Time
		want bool
	}{
		{start, true},
		{sub.Cert.NotAfter, true},
		{sub.Cert.NotAfter.Add(time.Nanosecond), false},
		{leaf.Cert.NotAfter, false},
	} {
		e.clock.Set(st.at)
		a := requireFresh(t, e, st.at.Sub(start).String())
		if got := subHash(a); got != st.want {
			t.Errorf("%v: short-lived sub-CA in the OCSP request data: %v, want %v", st.at.Sub(start), got, st.want)
		}
	}
}

// Without inotify (here: a configured directory that does not exist, so the store cannot watch
// all of its directories) the views are keyed by the stamps of the bundles and directories: a
// leaf dropped into the SECC directory changes that directory's stamp only, and the kept
// answers over the old leaf set must not be given out with the CA view that did not change.
func TestKeptAnswersWithoutInotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(c *store.Config) {
		c.CSMSLeafCertDir, c.CSMSLeafKeyDir = "client/nowhere", "client/nowhere"
	}})
	start := e.clock.Now()
	old := time.Now().Add(-time.Minute)
	if err := filepath.Walk(e.root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	}); err != nil {
		t.Fatal(err)
	}
	requireFresh(t, e, "start")
	requireFresh(t, e, "warm")
	byHand := e.ocspSECC("SECCByHandNoWatch", start.Add(-time.Hour), start.AddDate(6, 0, 0))
	e.placeLeaf(store.LeafV2G, "SECC_BY_HAND", byHand)
	a := requireFresh(t, e, "after a leaf was dropped in by hand")
	if inst, ocsp := answersList(t, e, a, byHand); !inst || !ocsp {
		t.Fatalf("hand-placed leaf listed: installed %v, OCSP request data %v; want both", inst, ocsp)
	}
}
