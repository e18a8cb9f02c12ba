package store_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// TestMaintainAnnouncesFutureLeaf: a leaf installed ahead of its start is announced (Installed,
// V2G — what EvseV2G reloads its TLS server on) the moment it becomes the leaf in use, and the SECC
// links move to it, without anyone calling the store; the reference had no such event. A leaf in
// use that comes within 30 days of its end is reported once.
func TestMaintainAnnouncesFutureLeaf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		root := t.TempDir()
		p, err := testpki.Generate(testpki.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.WriteLayout(root, ""); err != nil {
			t.Fatal(err)
		}
		// Starts in 3 hours and ends after the layout's leaf: it takes over when it starts.
		future, err := p.CPOSubCA2.Issue(testpki.Spec{CommonName: "SECCNext", Organization: testpki.Organization, Country: testpki.Country,
			DomainComponent: "CPO", NotBefore: now.Add(3 * time.Hour), NotAfter: now.AddDate(5, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		key, _ := future.KeyPEM("")
		cso := filepath.Join(root, "client", "cso")
		for name, data := range map[string][]byte{"SECC_LEAF_NEXT.pem": future.CertPEM(), "CPO_CERT_CHAIN_NEXT.pem": future.ChainPEM(), "SECC_LEAF_NEXT.key": key} {
			if err := os.WriteFile(filepath.Join(cso, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg := store.DefaultConfig(root)
		cfg.SECCLeafCertLink = "client/cso/current_secc.pem"
		// The loop wakes at the next start or end of a leaf, or after a GC period: a long period
		// keeps the five years of fake time below to a few wake-ups.
		cfg.GCInterval = store.Duration(200 * 24 * time.Hour)
		var mu sync.Mutex
		var events []store.Event
		s, err := store.Open(cfg, store.Options{OnEvent: func(e store.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Maintain(ctx); close(done) }()
		synctest.Wait()

		take := func() []store.Event {
			mu.Lock()
			defer mu.Unlock()
			out := events
			events = nil
			return out
		}
		if got := take(); len(got) != 0 {
			t.Fatalf("events before anything changed: %+v", got)
		}
		if r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); r.Info.CertificateSingle != filepath.Join(cso, "SECC_LEAF.pem") {
			t.Fatalf("before the start: leaf %+v, want the layout's", r.Info)
		}

		time.Sleep(3*time.Hour + 2*time.Second)
		synctest.Wait()
		got := take()
		if len(got) != 1 || got[0].Kind != store.EventLeafValid || got[0].Operation != store.OperationInstalled || got[0].LeafType != store.LeafV2G {
			t.Fatalf("events when the future leaf started: %+v, want one leaf_valid Installed V2G", got)
		}
		if r := s.GetLeafCertificateInfo(store.LeafV2G, store.EncodingPEM, false); r.Info.CertificateSingle != filepath.Join(cso, "SECC_LEAF_NEXT.pem") {
			t.Fatalf("after the start: leaf %+v, want SECC_LEAF_NEXT.pem", r.Info)
		}
		if target, err := os.Readlink(filepath.Join(cso, "current_secc.pem")); err != nil || target != filepath.Join(cso, "SECC_LEAF_NEXT.pem") {
			t.Fatalf("SECC link points at %q (%v), want the new leaf", target, err)
		}

		// Nearly five years later the leaf in use is within 30 days of its end: one warning,
		// not one per wake-up.
		time.Sleep(time.Until(future.Cert.NotAfter.Add(-20 * 24 * time.Hour)))
		synctest.Wait()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		warnings := 0
		for _, e := range take() {
			if e.Kind == store.EventLeafExpiry && e.LeafType == store.LeafV2G {
				warnings++
			}
		}
		if warnings != 1 {
			t.Fatalf("%d expiry warnings for the leaf in use, want 1", warnings)
		}
		cancel()
		<-done
	})
}
