package store_test

import (
	"strings"
	"testing"

	"github.com/evsesec/evsesec/store"
)

// One SECC leaf per EVSE: two EVSEs with leaves of different SECC-IDs each get their own, of
// each kind; an EVSE without one gets the station-wide choice.
func TestSeccIDSelection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{iso15118_20: true, seccIDs: []string{"DEABCS1EVSE1", "DEABCS1EVSE2"}})
	for _, ev := range e.pki.EVSEs {
		for _, k := range []struct {
			lt   store.LeafType
			want string
		}{{store.LeafV2G, string(ev.V2G.CertPEM())}, {store.LeafV2G20, string(ev.V2G20.CertPEM())}} {
			q := store.LeafQuery{SeccID: ev.SeccID}
			got := e.s.LeafCertificateInfoFor(k.lt, store.EncodingPEM, false, q)
			if got.Status != store.InfoAccepted || string(readFile(t, got.Info.CertificateSingle)) != k.want {
				t.Errorf("%s %s: %+v, want the EVSE's own leaf", ev.SeccID, k.lt, got.Info)
			}
			all := e.s.AllValidCertificatesInfoFor(k.lt, store.EncodingPEM, false, q)
			if all.Status != store.InfoAccepted || len(all.Info) != 1 || string(readFile(t, all.Info[0].CertificateSingle)) != k.want {
				t.Errorf("%s %s all valid: %+v", ev.SeccID, k.lt, all)
			}
		}
	}
	// Unknown SECC-ID and none at all: the station-wide choice, the same answer for both.
	for _, lt := range []store.LeafType{store.LeafV2G, store.LeafV2G20} {
		station := e.s.GetLeafCertificateInfo(lt, store.EncodingPEM, false)
		other := e.s.LeafCertificateInfoFor(lt, store.EncodingPEM, false, store.LeafQuery{SeccID: "DEABCS1EVSE9"})
		zero := e.s.LeafCertificateInfoFor(lt, store.EncodingPEM, false, store.LeafQuery{})
		if station.Status != store.InfoAccepted || other.Info.CertificateSingle != station.Info.CertificateSingle ||
			zero.Info.CertificateSingle != station.Info.CertificateSingle {
			t.Errorf("%s: unknown SECC-ID gave %+v, station %+v", lt, other.Info, station.Info)
		}
	}
	// The CSMS leaf ignores the SECC-ID.
	if got := e.s.LeafCertificateInfoFor(store.LeafCSMS, store.EncodingPEM, false, store.LeafQuery{SeccID: "DEABCS1EVSE1"}); got.Status != store.InfoAccepted {
		t.Errorf("CSMS with a SECC-ID: %s", got.Status)
	}
	if !strings.Contains(e.logs.String(), "no leaf for this SECC-ID") {
		t.Error("the fallback for an unknown SECC-ID is not logged")
	}
}

// ls lists each SECC leaf's SECC-ID and kind; doctor, told the EVSEs, warns about an EVSE
// without a leaf of its own and about EVSEs that share one.
func TestSeccIDInventoryAndDoctor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{iso15118_20: true, seccIDs: []string{"EVSE1", "EVSE2"}})
	ids := map[string]store.LeafType{}
	for _, r := range e.s.Inventory() {
		if r.Kind == "leaf" && r.Domain == store.CAV2G {
			ids[r.SeccID+"/"+string(r.LeafType)] = r.LeafType
		}
		if r.Kind == "leaf" && r.LeafType == store.LeafCSMS && r.SeccID != "" {
			t.Errorf("CSMS leaf with a SECC-ID: %+v", r)
		}
	}
	for _, want := range []string{"SECCCert/V2G", "SECC20Cert/V2G20", "EVSE1/V2G", "EVSE1/V2G20", "EVSE2/V2G", "EVSE2/V2G20"} {
		if _, ok := ids[want]; !ok {
			t.Errorf("inventory lacks the SECC leaf %s; has %v", want, ids)
		}
	}

	// Without EVSE ids doctor says nothing about EVSEs.
	for _, f := range e.s.Diagnose() {
		if strings.Contains(f.Problem, "EVSE") {
			t.Errorf("doctor without secc_ids: %+v", f)
		}
	}
	// EVSE1 and EVSE2 have their own; EVSE3 and EVSE4 have none and share the station's choice.
	findings := e.s.DiagnoseEVSEs([]string{"EVSE1", "EVSE2", "EVSE3", "EVSE4"})
	var text []string
	for _, f := range findings {
		text = append(text, f.Severity+": "+f.Problem)
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{
		`warning: EVSE "EVSE3" has no usable V2G leaf of its own`, `warning: EVSE "EVSE4" has no usable V2G20 leaf of its own`,
		// The station's choice may be another EVSE's own leaf, which then is shared three ways.
		`"EVSE3", "EVSE4" share the V2G leaf`, `"EVSE3", "EVSE4" share the V2G20 leaf`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("doctor lacks %q:\n%s", want, all)
		}
	}
	for _, notWant := range []string{`"EVSE1" has no`, `"EVSE2" has no`} {
		if strings.Contains(all, notWant) {
			t.Errorf("doctor says %q:\n%s", notWant, all)
		}
	}
	// The config key gives the same findings.
	e.cfg.SECCIDs = []string{"EVSE1", "EVSE3"}
	e.open()
	cfgFindings := 0
	for _, f := range e.s.Diagnose() {
		if strings.Contains(f.Problem, `"EVSE3" has no usable`) {
			cfgFindings++
		}
	}
	if cfgFindings != 2 {
		t.Errorf("secc_ids in the config: %d findings about EVSE3, want 2 (V2G and V2G20)", cfgFindings)
	}
}

// secc_ids must name each EVSE once.
func TestSeccIDsConfig(t *testing.T) {
	t.Parallel()
	for _, ids := range [][]string{{""}, {"EVSE1", "EVSE1"}} {
		cfg := store.DefaultConfig(t.TempDir())
		cfg.SECCIDs = ids
		if _, err := store.Open(cfg, store.Options{}); err == nil || !strings.Contains(err.Error(), "secc_ids") {
			t.Errorf("secc_ids %q: Open err = %v", ids, err)
		}
	}
}
