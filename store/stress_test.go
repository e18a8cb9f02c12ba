package store

// Concurrency stress: 16 goroutines (on two Store values) and two more processes (this test
// binary re-executed with -test.run=^TestStressChild$) hammer one store with reads and writes.
// Every writer owns its own certificates, so what the store must hold at the end follows from the
// writes each one saw acknowledged; readers check invariants all along (the base PKI always
// verifies, the current leaves are always there). Run it under the race detector:
// go test -race -run TestStress ./store/
//
// It runs for 15 s in CI (CI=true) and 3 s elsewhere; EVSESEC_STRESS_DURATION overrides.

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// stressConfig is the store of the stress run: the V2G bundle a file (every install and delete
// rewrites it), the MO bundle a directory (files, hash links and the combined file); no limits;
// CSR keys never expire during the run (a writer's CSR must not be collected before its leaf
// comes).
func stressConfig(root string) Config {
	cfg := DefaultConfig(root)
	cfg.MOCABundle = "ca/mo"
	cfg.MaxStoreBytes = 0
	cfg.MaxStoreEntries = 0
	cfg.CSRExpiry = Duration(time.Hour)
	return cfg
}

// stressModel is what one writer's acknowledged writes say about the certificates it owns.
type stressModel struct {
	// CA: pool certificate fingerprint → domain → installed.
	CA map[string]map[CAType]bool `json:"ca"`
	// Leaves: fingerprint → the leaf (DER) while installed; the type is in LeafType.
	Leaves   map[string][]byte   `json:"leaves"`
	LeafType map[string]LeafType `json:"leaf_type"`
	// OCSP: leaf fingerprint → SHA-256 (hex) of the response cached last.
	OCSP map[string]string `json:"ocsp"`
	Ops  int               `json:"ops"`
}

func newStressModel() *stressModel {
	return &stressModel{CA: map[string]map[CAType]bool{}, Leaves: map[string][]byte{}, LeafType: map[string]LeafType{}, OCSP: map[string]string{}}
}

// stressCAWriter installs and deletes its own pool CAs until stop.
func stressCAWriter(s *Store, pool []*testpki.Issued, hashes []certs.HashData, rng *mrand.Rand, stop <-chan struct{}, m *stressModel, fail func(string)) {
	domains := []CAType{CAV2G, CAMO, CACSMS}
	for {
		select {
		case <-stop:
			return
		default:
		}
		i := rng.IntN(len(pool))
		fp := tortureFP(pool[i].Cert)
		m.Ops++
		if rng.IntN(3) == 0 {
			switch r := s.DeleteCertificate(hashes[i]); r {
			case DeleteAccepted:
				delete(m.CA, fp)
			case DeleteNotFound:
				for d, in := range m.CA[fp] {
					if in {
						fail(fmt.Sprintf("delete of %s answered NotFound, but it was installed in %s", pool[i].Cert.Subject.CommonName, d))
					}
				}
			default:
				fail(fmt.Sprintf("delete of %s: %s", pool[i].Cert.Subject.CommonName, r))
			}
			continue
		}
		d := domains[rng.IntN(len(domains))]
		if r := s.InstallCACertificate(string(pool[i].CertPEM()), d); r != InstallAccepted {
			fail(fmt.Sprintf("install of %s into %s: %s", pool[i].Cert.Subject.CommonName, d, r))
			continue
		}
		if m.CA[fp] == nil {
			m.CA[fp] = map[CAType]bool{}
		}
		m.CA[fp][d] = true
	}
}

// stressLeafWriter makes CSRs, installs the signed leaves, caches OCSP responses for them and
// deletes them again, until stop.
func stressLeafWriter(s *Store, name string, v2gIssuer, csmsIssuer *testpki.Issued, v2gChain []*x509.Certificate, rng *mrand.Rand, stop <-chan struct{}, m *stressModel, fail func(string)) {
	var mine []string // fingerprints of installed leaves, in install order
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		default:
		}
		m.Ops++
		switch w := rng.IntN(10); {
		case w < 4 || len(mine) == 0:
			lt, issuer := LeafV2G, v2gIssuer
			if rng.IntN(2) == 0 {
				lt, issuer = LeafCSMS, csmsIssuer
			}
			r := s.GenerateCSR(lt, "DE", "Stress", fmt.Sprintf("%s leaf %d", name, n), false)
			if r.Status != CSRAccepted {
				fail(fmt.Sprintf("CSR: %s", r.Status))
				continue
			}
			leaf, err := tortureSignCSR(r.CSR, issuer, time.Duration(rng.IntN(1000))*time.Second)
			if err != nil {
				fail(err.Error())
				continue
			}
			chain := []*x509.Certificate{leaf}
			if lt == LeafV2G {
				chain = append(chain, v2gChain...)
			}
			if res := s.UpdateLeafCertificate(string(certs.EncodePEM(chain...)), lt); res != InstallAccepted {
				fail(fmt.Sprintf("update_leaf_certificate %s: %s", lt, res))
				continue
			}
			fp := tortureFP(leaf)
			m.Leaves[fp], m.LeafType[fp] = leaf.Raw, lt
			mine = append(mine, fp)
		case w < 7:
			fp := mine[rng.IntN(len(mine))]
			leaf, _ := x509.ParseCertificate(m.Leaves[fp])
			issuer := v2gIssuer
			if m.LeafType[fp] == LeafCSMS {
				issuer = csmsIssuer
			}
			der, err := tortureOCSPResponse(leaf, issuer, time.Now(), rng.IntN(1000))
			if err != nil {
				fail(err.Error())
				continue
			}
			h, _ := certs.ComputeHashData(leaf, issuer.Cert, certs.SHA256)
			if err := s.UpdateOCSPCache(h, certs.EncodeBase64(der)); err != nil {
				fail(fmt.Sprintf("update_ocsp_cache: %v", err))
				continue
			}
			sum := sha256.Sum256(der)
			m.OCSP[fp] = hex.EncodeToString(sum[:])
		default:
			k := rng.IntN(len(mine))
			fp := mine[k]
			leaf, _ := x509.ParseCertificate(m.Leaves[fp])
			issuer := v2gIssuer
			if m.LeafType[fp] == LeafCSMS {
				issuer = csmsIssuer
			}
			h, _ := certs.ComputeHashData(leaf, issuer.Cert, certs.SHA256)
			switch r := s.DeleteCertificate(h); r {
			case DeleteAccepted:
				delete(m.Leaves, fp)
				delete(m.LeafType, fp)
				delete(m.OCSP, fp)
				mine = append(mine[:k], mine[k+1:]...)
			case DeleteFailed:
				// The station's current CSMS leaf cannot be deleted (OCPP M04.FR.06): it stays.
			default:
				fail(fmt.Sprintf("delete of own leaf: %s", r))
			}
		}
	}
}

// stressDuration is how long the writers run.
func stressDuration(t testing.TB) time.Duration {
	if v := os.Getenv("EVSESEC_STRESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EVSESEC_STRESS_DURATION=%q", v)
		}
		return d
	}
	if os.Getenv("CI") == "true" && !testing.Short() {
		return 15 * time.Second
	}
	return 3 * time.Second
}

// TestStressChild is a writer process of TestStressHammer; it does nothing in a normal run.
func TestStressChild(t *testing.T) {
	work := os.Getenv("EVSESEC_STRESS_CHILD")
	if work == "" {
		t.Skip("child process of TestStressHammer")
	}
	idx, _ := strconv.Atoi(os.Getenv("EVSESEC_STRESS_CHILD_INDEX"))
	d, _ := time.ParseDuration(os.Getenv("EVSESEC_STRESS_CHILD_DURATION"))
	cas, pool, issuers, err := tortureLoadMaterial(work)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(stressConfig(filepath.Join(work, "store")), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The child owns the pool certificates i with i%2 == idx.
	var mine []*testpki.Issued
	var hashes []certs.HashData
	for i, c := range pool {
		if i%2 != idx {
			continue
		}
		issuer := c.Cert
		if issuers[i] != "" {
			issuer = cas[issuers[i]].Cert
		}
		h, _ := certs.ComputeHashData(c.Cert, issuer, certs.SHA256)
		mine, hashes = append(mine, c), append(hashes, h)
	}
	var mu sync.Mutex
	var failures []string
	fail := func(msg string) {
		mu.Lock()
		failures = append(failures, msg)
		mu.Unlock()
	}
	stop := make(chan struct{})
	caModel, leafModel := newStressModel(), newStressModel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		stressCAWriter(s, mine, hashes, mrand.New(mrand.NewPCG(uint64(idx), 1)), stop, caModel, fail)
	}()
	go func() {
		defer wg.Done()
		stressLeafWriter(s, fmt.Sprintf("process %d", idx), cas["CPOSubCA2"], cas["CSMSRoot"],
			[]*x509.Certificate{cas["CPOSubCA2"].Cert, cas["CPOSubCA1"].Cert}, mrand.New(mrand.NewPCG(uint64(idx), 2)), stop, leafModel, fail)
	}()
	time.Sleep(d)
	close(stop)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	out := struct{ CA, Leaf *stressModel }{caModel, leafModel}
	data, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, fmt.Sprintf("model-%d.json", idx)), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStressHammer(t *testing.T) {
	if os.Getenv("EVSESEC_STRESS_CHILD") != "" || os.Getenv("EVSESEC_TORTURE_CHILD") != "" {
		t.Skip("inside a child")
	}
	dur := stressDuration(t)
	p := tortureNewPKI(t)
	work := t.TempDir()
	cfg := stressConfig(filepath.Join(work, "store"))
	base, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tortureInstallBase(t, base, p)

	// The pool: 2 per writer goroutine and 2 per child process (roots and sub-CAs of the V2G
	// root), each written to the material file the children read.
	const caWriters, leafWriters, procs = 6, 4, 2
	m := tortureMaterial{CAs: map[string]tortureKeyed{}}
	for name, c := range map[string]*testpki.Issued{"V2GRoot": p.V2GRoot, "CPOSubCA1": p.CPOSubCA1, "CPOSubCA2": p.CPOSubCA2, "CSMSRoot": p.CSMSRoot} {
		k, err := tortureKeyedOf(c, "", true)
		if err != nil {
			t.Fatal(err)
		}
		m.CAs[name] = k
	}
	var pool []*testpki.Issued
	var poolHash []certs.HashData
	for i := 0; i < 2*(caWriters+procs); i++ {
		var c *testpki.Issued
		if i%4 < 2 {
			c = mustRoot(t, caSpec(fmt.Sprintf("Stress Root %d", i)))
			k, _ := tortureKeyedOf(c, "", false)
			m.Pool = append(m.Pool, k)
			poolHash = append(poolHash, selfHash(t, c))
		} else {
			c = mustIssue(t, p.V2GRoot, caSpec(fmt.Sprintf("Stress Sub %d", i)))
			k, _ := tortureKeyedOf(c, "V2GRoot", false)
			m.Pool = append(m.Pool, k)
			poolHash = append(poolHash, hashOf(t, c, p.V2GRoot))
		}
		pool = append(pool, c)
	}
	// The children take the last 2*procs pool entries.
	childPool := len(pool) - 2*procs
	mc := m
	mc.Pool = m.Pool[childPool:]
	data, err := json.Marshal(mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "material.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}

	stores := []*Store{}
	for i := 0; i < 2; i++ {
		s, err := Open(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}

	var mu sync.Mutex
	var failures []string
	fail := func(msg string) {
		mu.Lock()
		if len(failures) < 50 {
			failures = append(failures, msg)
		}
		mu.Unlock()
	}

	// Two writer processes.
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStressChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "EVSESEC_STRESS_CHILD="+work, "EVSESEC_STRESS_CHILD_INDEX="+strconv.Itoa(i),
			"EVSESEC_STRESS_CHILD_DURATION="+dur.String())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, &out)
	}

	stop := make(chan struct{})
	var writers, others sync.WaitGroup
	models := make([]*stressModel, caWriters+leafWriters)
	for g := 0; g < caWriters; g++ {
		models[g] = newStressModel()
		writers.Add(1)
		go func(g int) {
			defer writers.Done()
			stressCAWriter(stores[g%2], pool[2*g:2*g+2], poolHash[2*g:2*g+2], mrand.New(mrand.NewPCG(uint64(g), 3)), stop, models[g], fail)
		}(g)
	}
	for g := 0; g < leafWriters; g++ {
		models[caWriters+g] = newStressModel()
		writers.Add(1)
		go func(g int) {
			defer writers.Done()
			stressLeafWriter(stores[g%2], fmt.Sprintf("goroutine %d", g), p.CPOSubCA2, p.CSMSRoot,
				[]*x509.Certificate{p.CPOSubCA2.Cert, p.CPOSubCA1.Cert}, mrand.New(mrand.NewPCG(uint64(g), 4)), stop, models[caWriters+g], fail)
		}(g)
	}
	var reads atomic.Int64
	// Two maintainers: garbage collection and the derived files of the directory bundle.
	others.Add(2)
	go func() {
		defer others.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			stores[0].GarbageCollect()
			time.Sleep(10 * time.Millisecond)
		}
	}()
	go func() {
		defer others.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if f := stores[1].GetVerifyFile(CAMO); f == "" {
				fail("get_verify_file MO returned nothing")
			}
			if l := stores[1].GetVerifyLocation(CAMO); l == "" {
				fail("get_verify_location MO returned nothing")
			}
		}
	}()
	// Four readers checking what must hold at every moment.
	seccChain := string(p.SECCLeaf.ChainPEM())
	for r := 0; r < 4; r++ {
		others.Add(1)
		go func(r int) {
			defer others.Done()
			s := stores[r%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				reads.Add(1)
				switch r {
				case 0:
					if got := s.VerifyCertificate(seccChain, []LeafType{LeafV2G}); got != ValidationValid {
						fail("verify of the base SECC chain: " + string(got))
					}
					if !s.IsCACertificateInstalled(CAV2G) || !s.IsCACertificateInstalled(CAMO) {
						fail("a base domain has no trust anchor")
					}
				case 1:
					for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
						if in := s.GetLeafCertificateInfo(lt, EncodingPEM, true); in.Status != InfoAccepted {
							fail(fmt.Sprintf("get_leaf_certificate_info %s: %s", lt, in.Status))
						}
					}
				case 2:
					if res := s.GetInstalledCertificates([]CertificateType{V2GRootCertificate, MORootCertificate, V2GCertificateChain}); res.Status != InstalledAccepted {
						fail("get_installed_certificates: " + string(res.Status))
					}
					s.GetV2GOCSPRequestData()
				case 3:
					s.Inventory()
					for _, f := range s.Diagnose() {
						if f.Severity == "error" {
							fail("doctor during the run: " + f.Path + ": " + f.Problem)
						}
					}
				}
			}
		}(r)
	}

	time.Sleep(dur)
	close(stop)
	writers.Wait()
	others.Wait()
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer process %d: %v\n%s", i, err, outs[i])
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	// The children's models.
	for i := 0; i < procs; i++ {
		data, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("model-%d.json", i)))
		if err != nil {
			t.Fatalf("writer process %d left no model: %v", i, err)
		}
		var cm struct{ CA, Leaf *stressModel }
		if err := json.Unmarshal(data, &cm); err != nil {
			t.Fatal(err)
		}
		models = append(models, cm.CA, cm.Leaf)
	}
	ops := 0
	for _, m := range models {
		ops += m.Ops
	}
	t.Logf("%v: %d writes acknowledged or checked by %d writers, %d reads", dur, ops, len(models), reads.Load())

	stressCheck(t, cfg, p, pool, models)
}

// stressCheck compares a fresh store with the merged models of all writers.
func stressCheck(t *testing.T, cfg Config, p *testpki.PKI, pool []*testpki.Issued, models []*stressModel) {
	t.Helper()
	s, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range s.Diagnose() {
		if f.Severity == "error" {
			t.Errorf("doctor: %s: %s", f.Path, f.Problem)
		}
	}
	tortureCheckFiles(t, cfg.CertsRoot, "", "after the stress run")
	ca := map[string]map[CAType]bool{}
	leaves := map[string]LeafType{tortureFP(p.SECCLeaf.Cert): LeafV2G, tortureFP(p.CSMSLeaf.Cert): LeafCSMS}
	leafDER := map[string][]byte{}
	ocspWant := map[string]string{}
	for _, m := range models {
		for fp, d := range m.CA {
			ca[fp] = d
		}
		for fp, der := range m.Leaves {
			leaves[fp], leafDER[fp] = m.LeafType[fp], der
		}
		for fp, h := range m.OCSP {
			ocspWant[fp] = h
		}
	}
	for _, c := range pool {
		fp := tortureFP(c.Cert)
		for _, d := range CATypes {
			if got, want := tortureHasCA(s, d, c.Cert), ca[fp][d]; got != want {
				t.Errorf("CA %s in %s: present = %v, acknowledged writes say %v", c.Cert.Subject.CommonName, d, got, want)
			}
		}
	}
	for _, lt := range []LeafType{LeafV2G, LeafCSMS} {
		ls := s.readLeaves(lt)
		for _, e := range ls.entries {
			if leaves[tortureFP(e.cert)] != lt {
				t.Errorf("%s leaf %s is in the store, but no acknowledged write installed it (or one deleted it)", lt, describe(e.cert))
			}
		}
	}
	for fp, lt := range leaves {
		var c *x509.Certificate
		switch {
		case fp == tortureFP(p.SECCLeaf.Cert):
			c = p.SECCLeaf.Cert
		case fp == tortureFP(p.CSMSLeaf.Cert):
			c = p.CSMSLeaf.Cert
		default:
			c, _ = x509.ParseCertificate(leafDER[fp])
		}
		if !tortureHasLeaf(s, lt, c) {
			t.Errorf("%s leaf %s was acknowledged but is not complete in the store", lt, describe(c))
			continue
		}
		want, ok := ocspWant[fp]
		if !ok {
			continue
		}
		issuer := p.CPOSubCA2.Cert
		if lt == LeafCSMS {
			issuer = p.CSMSRoot.Cert
		}
		h, _ := certs.ComputeHashData(c, issuer, certs.SHA256)
		sum := sha256.Sum256(tortureOCSPOf(s, c, h))
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("OCSP response of %s is not the last one acknowledged", describe(c))
		}
	}
}
