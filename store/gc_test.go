package store_test

// garbage_collect: pending CSR keys expire on every run, expired leaves are pruned only when the
// store is over a limit (bytes or entries, both counted), a key is deleted only when no
// certificate matches it and it is not pending, and GC sends Deleted events. The clock is the
// store's Options.Clock, or testing/synctest's fake time for the periodic timer. Reference
// scenarios: T31, T37, T38.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evsesec/evsesec/keys"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

func TestGCDefaults(t *testing.T) {
	t.Parallel()
	cfg := store.DefaultConfig(t.TempDir())
	if cfg.GCInterval.D() != 20*time.Minute || cfg.CSRExpiry.D() != 60*time.Minute || cfg.MaxStoreBytes != 50*1024*1024 ||
		cfg.MaxStoreEntries != 2000 || cfg.MinKeptLeaves != 10 {
		t.Fatalf("defaults %+v", cfg)
	}
}

// T31 adapted: the store counts every file of its tree and adds up their sizes (the reference
// compared only the size of the last file).
func TestUsageCountsEveryFileAndByte(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	count := func() (int, int64) {
		n, size := 0, int64(0)
		for _, dir := range []string{"ca", "client"} {
			filepath.WalkDir(e.path(dir), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					fi, _ := d.Info()
					n, size = n+1, size+fi.Size()
				}
				return nil
			})
		}
		return n, size
	}
	n, size := e.s.Usage()
	wn, wsize := count()
	if n != 9 || n != wn || size != wsize {
		t.Fatalf("usage %d files %d bytes, want 9 files (%d) and %d bytes", n, size, wn, wsize)
	}
	// DER copies, OCSP files and anything else under the leaf directories count; symlinks do not.
	e.s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingDER, false)
	writeFile(t, e.path("client/cso/ocsp/x.der"), []byte("0123456789"), 0o644)
	if err := os.Symlink(e.layout.SECCLeafCert, e.path("client/cso/link.pem")); err != nil {
		t.Fatal(err)
	}
	n, size = e.s.Usage()
	wn, wsize = count()
	if n != 13 || n != wn || size != wsize {
		t.Fatalf("usage %d files %d bytes, want 13 files (%d) and %d bytes", n, size, wn, wsize)
	}
}

// garbage_collect through the dispatcher: three arrays, empty rather than null; a pending key
// removed by hand is no longer reported as pending.
func TestGCReportJSONAndVanishedPendingKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	var raw map[string]any
	if err := e.call("garbage_collect", map[string]any{}, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"expired_csr_keys", "removed_leaves", "removed_ocsp"} {
		if l, ok := raw[k].([]any); !ok || len(l) != 0 {
			t.Fatalf("%s = %#v, want []", k, raw[k])
		}
	}
	_, key := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECC")
	removeFile(t, key)
	e.s.GarbageCollect()
	if p := e.s.PendingCSRKeys(); len(p) != 0 {
		t.Fatalf("a key removed by hand is still pending: %v", p)
	}
}

// DESIGN §3 #2 and reference T38: a pending CSR key expires after csr_expiry on any GC run, with
// the store far from full (the reference's GC did nothing until the store was full). Expiry needs
// strictly more than csr_expiry. Nothing else is touched, and expired leaves stay while no limit
// is exceeded.
func TestGCExpiresPendingKeyOnEveryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	start := e.clock.Now()
	exp := e.issueSECC("Expired", start.AddDate(-2, 0, 0), start.Add(-time.Hour))
	e.placeLeaf(store.LeafV2G, "expired", exp)
	_, key := e.generateCSR(store.LeafCSMS, "DE", "Pionix", "NA")
	before := snapshot(t, e.root)
	e.events.take()

	for _, at := range []time.Duration{0, 59 * time.Minute, 60 * time.Minute} {
		e.clock.Set(start.Add(at))
		if rep := e.s.GarbageCollect(); len(rep.ExpiredCSRKeys)+len(rep.RemovedLeaves)+len(rep.RemovedOCSP) != 0 {
			t.Fatalf("GC at +%v removed %+v", at, rep)
		}
		requireUnchanged(t, e.root, before, fmt.Sprintf("GC at +%v", at))
	}
	e.clock.Set(start.Add(60*time.Minute + time.Second))
	var rep store.GCReport
	if err := e.call("garbage_collect", nil, &rep); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.ExpiredCSRKeys, []string{key}) || len(rep.RemovedLeaves) != 0 {
		t.Fatalf("GC past csr_expiry: %+v, want only %s", rep, key)
	}
	_, removed, changed := treeDiff(before, snapshot(t, e.root))
	if rel, _ := filepath.Rel(e.root, key); !slices.Equal(removed, []string{filepath.ToSlash(rel)}) || len(changed) != 0 {
		t.Fatalf("GC removed %v changed %v, want only the CSR key", removed, changed)
	}
	if p := e.s.PendingCSRKeys(); len(p) != 0 {
		t.Fatalf("pending after expiry: %v", p)
	}
	if ev := e.events.take(); len(ev) != 0 {
		t.Fatalf("events for a CSR key: %+v", ev)
	}
	// The expired leaf and its key are still there: the store is not over a limit.
	if !fileExists(e.path("client/cso/expired.pem")) || !fileExists(e.path("client/cso/expired.key")) {
		t.Fatal("GC pruned an expired leaf of a store under its limits")
	}
}

// DESIGN §3 #3: GC never deletes a key that a certificate uses, wherever that certificate is
// (here the key directories are separate from the certificate directories, where the reference
// looked for certificates in the key directory and deleted every such key), nor a key it cannot
// read. Only keys no certificate matches expire.
func TestGCKeepsLiveAndUnreadableKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) {
		cfg.CSMSLeafKeyDir = "client/csms_keys"
		cfg.SECCLeafKeyDir = "client/cso_keys"
	}})
	start := e.clock.Now()
	move := func(from, to string) {
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
	move(e.layout.SECCLeafKey, e.path("client/cso_keys/SECC_LEAF.key"))
	move(e.layout.CSMSLeafKey, e.path("client/csms_keys/CSMS_LEAF.key"))
	// A V2G leaf whose key sits in the CSMS key directory.
	cross := e.issueSECC("Cross", start.Add(-time.Hour), start.AddDate(1, 0, 0))
	writeFile(t, e.path("client/cso/cross.pem"), cross.CertPEM(), 0o644)
	writeKeyFile(t, e.path("client/csms_keys/cross.key"), cross.Key, "")
	// The key of a CA certificate of the store.
	writeKeyFile(t, e.path("client/cso_keys/v2g_root.key"), e.pki.V2GRoot.Key, "")
	// Keys GC cannot read: another password, not a key at all, a TPM key file.
	other, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	writeKeyFile(t, e.path("client/cso_keys/foreign.key"), other, "another password")
	writeFile(t, e.path("client/cso_keys/broken.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	writeFile(t, e.path("client/cso_keys/SECC_LEAF_TPM.tkey"), []byte("-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n"), 0o600)
	// An orphan key and a fresh CSR key: these two expire.
	orphan, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	orphanPath := e.path("client/csms_keys/orphan.key")
	writeKeyFile(t, orphanPath, orphan, "")
	_, csrKey := e.generateCSR(store.LeafV2G, "DE", "EVerest", "SECC")
	if filepath.Dir(csrKey) != e.path("client/cso_keys") {
		t.Fatalf("CSR key written to %s, want the SECC key directory", csrKey)
	}
	before := snapshot(t, e.root)

	for _, at := range []time.Duration{0, time.Hour, 2 * time.Hour, 48 * time.Hour} {
		e.clock.Set(start.Add(at))
		e.s.GarbageCollect()
	}
	_, removed, changed := treeDiff(before, snapshot(t, e.root))
	if want := []string{"client/csms_keys/orphan.key", "client/cso_keys/" + filepath.Base(csrKey)}; !slices.Equal(removed, want) || len(changed) != 0 {
		t.Fatalf("GC removed %v changed %v, want %v", removed, changed, want)
	}
	// The leaves still have their keys.
	if in := leafInfo(t, e, store.LeafV2G); in.Key != e.path("client/cso_keys/SECC_LEAF.key") {
		t.Fatalf("SECC key %s", in.Key)
	}
	if in := leafInfo(t, e, store.LeafCSMS); in.Key != e.path("client/csms_keys/CSMS_LEAF.key") {
		t.Fatalf("CSMS key %s", in.Key)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "key file cannot be read; it is kept") {
		t.Fatalf("unreadable keys not reported:\n%s", logs)
	}
	requireNoSecretsLogged(t, logs, "another password", e.path("client/cso_keys/foreign.key"), e.path("client/cso_keys/SECC_LEAF.key"))
}

// bulkLeaves writes the reference's EvseSecurityTestsExpired bulk set (T37) with P-256 keys:
// 25 expired leaves (notAfter 1…25 years ago) and 5 valid ones (notAfter in 25…29 years), each as
// a single file and a key file in the SECC directory.
func bulkLeaves(e *env) (expiredNames, validNames []string) {
	e.t.Helper()
	start := e.clock.Now()
	for i := 0; i < 30; i++ {
		var nb, na time.Time
		var name string
		if i < 25 {
			nb, na = start.AddDate(-5-i, 0, 0), start.AddDate(-1-i, 0, 0)
			name = fmt.Sprintf("SECC_LEAF_EXPIRED_%02d", i)
			expiredNames = append(expiredNames, name)
		} else {
			nb, na = start.Add(-time.Hour), start.AddDate(i, 0, 0)
			name = fmt.Sprintf("SECC_LEAF_VALID_%02d", i)
			validNames = append(validNames, name)
		}
		e.placeLeaf(store.LeafV2G, name, e.issueSECC(name, nb, na))
	}
	return expiredNames, validNames
}

// T37 adapted: with the store over a limit, GC deletes the expired leaves beyond the newest
// min_kept_leaves of each type, each with its key, and sends a Deleted event for each. Two
// deliberate differences from the reference: the byte limit alone triggers it (the reference's
// byte sum was broken, T37 had to lower the entry limit), and min_kept_leaves counts leaves, not
// files (the reference kept 10 files, i.e. about 5 leaves stored as single + chain file).
func TestGCPrunesExpiredLeavesOverLimit(t *testing.T) {
	t.Parallel()
	for _, limit := range []string{"bytes", "entries"} {
		t.Run(limit, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			expiredNames, validNames := bulkLeaves(e)
			before := snapshot(t, e.root)
			if rep := e.s.GarbageCollect(); len(rep.RemovedLeaves) != 0 {
				t.Fatalf("GC under the limits pruned %v", rep.RemovedLeaves)
			}
			requireUnchanged(t, e.root, before, "GC under the limits")

			n, size := e.s.Usage()
			wantKept := 4 // newest 10 = 5 valid, the layout's SECC leaf, 4 newest expired
			if limit == "bytes" {
				e.cfg.MaxStoreBytes = size
			} else {
				e.cfg.MaxStoreEntries = n - 1
				e.cfg.MinKeptLeaves = 3 // newest 3 are valid anyway: every expired leaf goes
				wantKept = 0
			}
			e.open()
			e.events.take()
			probe := e.issueSECC("AfterGC", e.clock.Now().Add(-time.Hour), e.clock.Now().AddDate(40, 0, 0))
			writeKeyFile(t, e.path("client/cso/probe.key"), probe.Key, "")
			probePEM := pemOf(probe.Cert, e.pki.CPOSubCA2.Cert, e.pki.CPOSubCA1.Cert)
			if got := e.s.UpdateLeafCertificate(probePEM, store.LeafV2G); got != store.InstallStoreFull {
				t.Fatalf("install before GC: %s, want CertificateStoreMaxLengthExceeded", got)
			}
			before = snapshot(t, e.root)

			rep := e.s.GarbageCollect()
			var wantRemoved []string
			for i, name := range expiredNames {
				kept := i < wantKept
				for _, ext := range []string{".pem", ".key"} {
					p := e.path("client/cso/" + name + ext)
					if fileExists(p) != kept {
						t.Errorf("%s%s: exists=%v, want %v", name, ext, !kept, kept)
					}
					if !kept {
						rel, _ := filepath.Rel(e.root, p)
						wantRemoved = append(wantRemoved, filepath.ToSlash(rel))
					}
				}
			}
			for _, name := range validNames {
				if !fileExists(e.path("client/cso/"+name+".pem")) || !fileExists(e.path("client/cso/"+name+".key")) {
					t.Errorf("valid leaf %s or its key was removed", name)
				}
			}
			slices.Sort(wantRemoved)
			_, removed, changed := treeDiff(before, snapshot(t, e.root))
			if !slices.Equal(removed, wantRemoved) || len(changed) != 0 {
				t.Fatalf("GC removed %v (changed %v)\nwant %v", removed, changed, wantRemoved)
			}
			if len(rep.RemovedLeaves) != 25-wantKept {
				t.Fatalf("report lists %d leaf files, want %d: %v", len(rep.RemovedLeaves), 25-wantKept, rep.RemovedLeaves)
			}
			ev := e.events.take()
			if len(ev) != 25-wantKept {
				t.Fatalf("%d events, want %d", len(ev), 25-wantKept)
			}
			for _, x := range ev {
				if x.Kind != store.EventGC || x.Operation != store.OperationDeleted || x.LeafType != store.LeafV2G || x.CAType != "" ||
					!strings.HasPrefix(filepath.Base(x.Path), "SECC_LEAF_EXPIRED_") {
					t.Fatalf("event %+v", x)
				}
			}
			// The kept leaves' keys are intact and still match (T37's last check).
			for _, name := range append(validNames, expiredNames[:wantKept]...) {
				k := loadKey(t, e.path("client/cso/"+name+".key"), "")
				if !keys.Matches(fileCerts(t, e.path("client/cso/"+name+".pem"))[0], k.Public()) {
					t.Fatalf("key of %s does not match", name)
				}
			}
			requireCerts(t, e.layout.SECCChain, e.pki.SECCLeaf, e.pki.CPOSubCA2, e.pki.CPOSubCA1)
			if in := leafInfo(t, e, store.LeafCSMS); in.Key != e.layout.CSMSLeafKey {
				t.Fatal("the CSMS leaf was touched")
			}
			// GC made room: the probe installs now.
			if got := e.s.UpdateLeafCertificate(probePEM, store.LeafV2G); got != store.InstallAccepted {
				t.Fatalf("install after GC: %s", got)
			}
		})
	}
}

// DESIGN §3 #3: an expired leaf pruned by GC takes its key only when no remaining certificate
// uses that key (the reference ignored its protected keys when deleting expired leaves' keys).
func TestGCKeepsKeySharedWithKeptLeaf(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) { cfg.MinKeptLeaves = 0; cfg.MaxStoreEntries = 1 }})
	start := e.clock.Now()
	key, err := testpki.GenerateKey(testpki.KeyP256)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(cn string, nb, na time.Time) *testpki.Issued {
		spec := seccSpec(cn, nb, na)
		spec.Key = key
		c, err := e.pki.CPOSubCA2.Issue(spec)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	old := issue("Old", start.AddDate(-2, 0, 0), start.Add(-time.Hour))
	renewed := issue("Renewed", start.Add(-time.Hour), start.AddDate(3, 0, 0))
	writeFile(t, e.path("client/cso/old.pem"), old.CertPEM(), 0o644)
	writeFile(t, e.path("client/cso/renewed.pem"), renewed.CertPEM(), 0o644)
	writeKeyFile(t, e.path("client/cso/shared.key"), key, "")
	// An expired CSMS leaf whose key is the SECC leaf's: also kept.
	spec := testpki.Spec{CommonName: "OldCSMS", NotBefore: start.AddDate(-2, 0, 0), NotAfter: start.Add(-time.Hour), Key: e.pki.SECCLeaf.Key}
	oldCSMS, err := e.pki.CSMSRoot.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.path("client/csms/old_csms.pem"), oldCSMS.CertPEM(), 0o644)
	writeKeyFile(t, e.path("client/csms/old_csms.key"), e.pki.SECCLeaf.Key, "")

	rep := e.s.GarbageCollect()
	want := []string{e.path("client/csms/old_csms.pem"), e.path("client/cso/old.pem")}
	got := slices.Sorted(slices.Values(rep.RemovedLeaves))
	if !slices.Equal(got, want) {
		t.Fatalf("removed leaves %v, want %v", got, want)
	}
	for _, p := range []string{"client/cso/shared.key", "client/cso/renewed.pem", "client/csms/old_csms.key"} {
		if !fileExists(e.path(p)) {
			t.Errorf("%s was removed", p)
		}
	}
	// old_csms.key is the same key as the SECC leaf's: a certificate matches it, it never expires.
	e.clock.Advance(48 * time.Hour)
	if rep := e.s.GarbageCollect(); len(rep.ExpiredCSRKeys) != 0 {
		t.Fatalf("GC expired %v", rep.ExpiredCSRKeys)
	}
	if in := leafInfo(t, e, store.LeafV2G); in.Key != e.path("client/cso/shared.key") {
		t.Fatalf("renewed leaf selected with key %s", in.Key)
	}
}

// The GC timer with testing/synctest's fake clock: the store's maintenance loop (Maintain) runs
// GC every garbage_collect_time (default 20 min); with csr_expiry at its default of 60 min, a
// never-answered CSR key goes at the first run after 60 min (80 min), and not before. The store
// uses its default clock (time.Now, fake inside the bubble).
func TestGCTimerExpiresCSRKeySynctest(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		root := t.TempDir()
		cfg := store.DefaultConfig(root)
		s, err := store.Open(cfg, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Maintain(ctx)
			close(done)
		}()
		res := s.GenerateCSR(store.LeafV2G, "DE", "EVerest", "SECCCert", false)
		if res.Status != store.CSRAccepted {
			t.Fatalf("CSR: %s", res.Status)
		}
		pending := s.PendingCSRKeys()
		if len(pending) != 1 {
			t.Fatalf("pending %v", pending)
		}
		key := pending[0]
		time.Sleep(79 * time.Minute)
		synctest.Wait()
		if !fileExists(key) {
			t.Fatal("the CSR key is gone after 79 min (GC at 20, 40, 60 min must keep it)")
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if fileExists(key) {
			t.Fatal("the CSR key is still there after 81 min (GC at 80 min must remove it)")
		}
		if p := s.PendingCSRKeys(); len(p) != 0 {
			t.Fatalf("pending %v", p)
		}
		cancel()
		<-done
	})
}

// garbage_collect and update_certificate_links take no arguments; a malformed argument object is
// still an argument error and changes nothing.
func TestArgumentlessLeafCommandsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	before := snapshot(t, e.root)
	for _, cmd := range []string{"garbage_collect", "update_certificate_links"} {
		for _, args := range []string{"{", "[]", `"x"`, "12"} {
			if err := e.call(cmd, args, nil); !isArgError(err) {
				t.Errorf("%s %s: err %v, want an argument error", cmd, args, err)
			}
		}
		if err := e.call(cmd, `{"unexpected":1}`, nil); err != nil {
			t.Errorf("%s with an unknown argument: %v", cmd, err)
		}
	}
	requireUnchanged(t, e.root, before, "argument-less commands")
}

// With one directory for both leaf types, GC prunes each expired leaf once and reports it under
// its own type.
func TestGCSharedLeafDirectoryEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{config: func(cfg *store.Config) {
		cfg.CSMSLeafCertDir, cfg.CSMSLeafKeyDir = "client/cso", "client/cso"
		cfg.MaxStoreEntries, cfg.MinKeptLeaves = 1, 0
	}})
	start := e.clock.Now()
	oldSECC := e.issueSECC("OldSECC", start.AddDate(-2, 0, 0), start.Add(-time.Hour))
	oldCSMS := e.issueCSMS("OldCSMS", start.AddDate(-2, 0, 0), start.Add(-2*time.Hour))
	e.placeLeaf(store.LeafV2G, "old_secc", oldSECC)
	e.placeLeaf(store.LeafV2G, "old_csms", oldCSMS) // the same directory
	e.events.take()
	rep := e.s.GarbageCollect()
	if len(rep.RemovedLeaves) != 2 {
		t.Fatalf("removed %v", rep.RemovedLeaves)
	}
	got := map[string]store.LeafType{}
	for _, ev := range e.events.take() {
		got[filepath.Base(ev.Path)] = ev.LeafType
	}
	if len(got) != 2 || got["old_secc.pem"] != store.LeafV2G || got["old_csms.pem"] != store.LeafCSMS {
		t.Fatalf("events %v, want old_secc.pem V2G and old_csms.pem CSMS", got)
	}
	for _, p := range []string{"old_secc.key", "old_csms.key"} {
		if fileExists(e.path("client/cso/" + p)) {
			t.Fatalf("%s survived", p)
		}
	}
}
