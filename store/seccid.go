package store

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/evsesec/evsesec/certs"
)

// One SECC leaf per EVSE: OCPP 2.0.1 has the CSMS sign a SECC leaf for each EVSE, its CN being
// that EVSE's ISO15118SeccId. The interface has no argument to ask for one (EVerest#1655), so the
// selection by SECC-ID is a Go API (LeafQuery) that tlsconf and integrators call; the interface's
// commands keep making the station-wide choice.

// LeafQuery narrows the choice of a leaf. The zero value is the station-wide choice of
// GetLeafCertificateInfo and GetAllValidCertificatesInfo.
type LeafQuery struct {
	// SeccID asks for the leaf of one EVSE: among the usable SECC leaves of the type, the newest
	// whose subject CN is SeccID (exactly). When no usable leaf has that CN, the station-wide
	// choice is made instead (and logged), so an EVSE whose own leaf has not arrived yet keeps
	// working. Ignored for CSMS leaves.
	SeccID string
}

// LeafCertificateInfoFor is GetLeafCertificateInfo narrowed by q.
func (s *Store) LeafCertificateInfoFor(lt LeafType, enc EncodingFormat, includeOCSP bool, q LeafQuery) CertificateInfoResult {
	if q.SeccID == "" || lt.dirType() != LeafV2G {
		return s.GetLeafCertificateInfo(lt, enc, includeOCSP)
	}
	unlock := s.queryLock(enc)
	defer unlock()
	v := s.readCAs()
	ls := s.kindLeaves(lt)
	sel, status := s.selectLeaves(v, ls, s.now(), true)
	if status != InfoAccepted {
		return CertificateInfoResult{Status: status}
	}
	in := s.info(s.forSeccID(lt, sel, q.SeccID)[0], s.hashPool(v, ls), enc, includeOCSP)
	return CertificateInfoResult{Status: InfoAccepted, Info: &in}
}

// AllValidCertificatesInfoFor is GetAllValidCertificatesInfo narrowed by q: the newest usable
// leaf under each trust anchor among the leaves of q.SeccID, or among all when none is its.
func (s *Store) AllValidCertificatesInfoFor(lt LeafType, enc EncodingFormat, includeOCSP bool, q LeafQuery) CertificateFullInfoResult {
	if q.SeccID == "" || lt.dirType() != LeafV2G {
		return s.GetAllValidCertificatesInfo(lt, enc, includeOCSP)
	}
	res := CertificateFullInfoResult{Info: []CertificateInfo{}}
	unlock := s.queryLock(enc)
	defer unlock()
	v := s.readCAs()
	ls := s.kindLeaves(lt)
	sel, status := s.selectLeaves(v, ls, s.now(), true)
	res.Status = status
	if status != InfoAccepted {
		return res
	}
	pool := s.hashPool(v, ls)
	for _, sl := range newestPerRoot(s.forSeccID(lt, sel, q.SeccID)) {
		res.Info = append(res.Info, s.info(sl, pool, enc, includeOCSP))
	}
	return res
}

// forSeccID keeps the selected leaves (newest first) whose CN is id, or all of them when none is.
func (s *Store) forSeccID(lt LeafType, sel []selectedLeaf, id string) []selectedLeaf {
	var mine []selectedLeaf
	for _, sl := range sel {
		if sl.e.cert.Subject.CommonName == id {
			mine = append(mine, sl)
		}
	}
	if len(mine) == 0 {
		s.log.Info("no leaf for this SECC-ID; using the station-wide choice", "type", lt, "secc_id", id, "leaf", describe(sel[0].e.cert))
		return sel
	}
	return mine
}

// seccIDOf is the SECC-ID of a SECC leaf: its CN; empty for other leaves.
func seccIDOf(lt LeafType, c *x509.Certificate) string {
	if lt.dirType() != LeafV2G {
		return ""
	}
	return c.Subject.CommonName
}

// inUse marks the leaf each station leaf type hands out now.
func (s *Store) inUse(v *caView, now time.Time) map[certs.Fingerprint]bool {
	out := map[certs.Fingerprint]bool{}
	for _, lt := range stationLeafTypes {
		if sel, st := s.selectLeaves(v, s.kindLeaves(lt), now, false); st == InfoAccepted {
			out[sel[0].e.fp] = true
		}
	}
	return out
}

// seccTypesPresent are the leaf types doctor judges the selection of for the set ls: CSMS for
// the CSMS directory; V2G always for the SECC directory (as before V2G20 existed), and V2G20 when
// the directory holds a -20 leaf, so a station without ISO 15118-20 hears nothing new.
func (s *Store) seccTypesPresent(ls *leafSet) []LeafType {
	if ls.lt.dirType() != LeafV2G {
		return []LeafType{ls.lt}
	}
	out := []LeafType{LeafV2G}
	if len(s.kindLeaves(LeafV2G20).entries) > 0 {
		out = append(out, LeafV2G20)
	}
	return out
}

// inUse reports on the selection of one leaf type: none usable, or the one in use (or a CA it
// depends on) within an expiry threshold — the same thresholds as the maintenance loop's warnings
// and `evsesec check`.
func (d *diagnosis) inUse(ls *leafSet, now time.Time) {
	sel, st := d.s.selectLeaves(d.v, ls, now, false)
	if st != InfoAccepted {
		d.add("warning", ls.certDir, fmt.Sprintf("no usable %s leaf (%s)", ls.lt, st), "generate a CSR and install the signed leaf")
		return
	}
	if when := d.expiring(sel[0].e.cert, now); when != "" {
		d.add("warning", sel[0].e.firstFile().path, fmt.Sprintf("the %s leaf in use expires %s", ls.lt, when), "renew it: generate a CSR and install the signed leaf")
	}
	for _, c := range dependencies(sel[0]) {
		if when := d.expiring(c, now); when != "" {
			d.add("warning", ls.certDir, fmt.Sprintf("%s, a CA the %s leaf in use depends on, expires %s", describe(c), ls.lt, when),
				"install its successor and a leaf issued under it before then")
		}
	}
}

// DiagnoseEVSEs is Diagnose with the SECC-IDs of the station's EVSEs given (instead of the
// config's secc_ids).
func (s *Store) DiagnoseEVSEs(seccIDs []string) []Finding { return s.diagnose(seccIDs) }

// evses checks one leaf per EVSE for each SECC type that has a usable leaf at all: an EVSE whose
// SECC-ID no usable leaf carries (it is served another EVSE's or the station's leaf), and EVSEs
// that end up with the same leaf.
func (d *diagnosis) evses(ids []string) {
	if len(ids) == 0 {
		return
	}
	now := d.s.now()
	for _, lt := range []LeafType{LeafV2G, LeafV2G20} {
		ls := d.s.kindLeaves(lt)
		sel, st := d.s.selectLeaves(d.v, ls, now, true)
		if st != InfoAccepted {
			continue
		}
		byLeaf := map[certs.Fingerprint][]string{}
		var order []certs.Fingerprint
		leafOf := map[certs.Fingerprint]selectedLeaf{}
		for _, id := range ids {
			var got selectedLeaf
			own := false
			for _, sl := range sel {
				if sl.e.cert.Subject.CommonName == id {
					got, own = sl, true
					break
				}
			}
			if !own {
				got = sel[0]
				d.add("warning", ls.certDir, fmt.Sprintf("EVSE %q has no usable %s leaf of its own (CN=%s); it is served %s", id, lt, id, describe(got.e.cert)),
					fmt.Sprintf("generate a %s CSR with common name %s and install the signed leaf", lt, id))
			}
			if _, ok := byLeaf[got.e.fp]; !ok {
				order = append(order, got.e.fp)
			}
			byLeaf[got.e.fp] = append(byLeaf[got.e.fp], id)
			leafOf[got.e.fp] = got
		}
		for _, fp := range order {
			if shared := byLeaf[fp]; len(shared) > 1 {
				d.add("warning", leafOf[fp].e.firstFile().path, fmt.Sprintf("EVSEs %s share the %s leaf %s", strings.Join(quoteAll(shared), ", "), lt, describe(leafOf[fp].e.cert)),
					"give each EVSE its own leaf: one CSR per EVSE with its SECC-ID as common name")
			}
		}
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// checkSECCIDs validates secc_ids: no empty entry and none twice, since either would make doctor
// report EVSEs that do not exist or share a leaf by mistake.
func checkSECCIDs(ids []string) error {
	seen := map[string]bool{}
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return fmt.Errorf("config: secc_ids[%d] is empty", i)
		}
		if seen[id] {
			return fmt.Errorf("config: secc_ids: %q is given twice", id)
		}
		seen[id] = true
	}
	return nil
}
