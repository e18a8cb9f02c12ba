package store

import (
	"crypto/x509"

	"github.com/evsesec/evsesec/certs"
)

// OCSPRequestData is the interface's OCSPRequestData.
type OCSPRequestData struct {
	HashData     certs.HashData `json:"certificate_hash_data"`
	ResponderURL string         `json:"responder_url"`
}

// OCSPRequestDataList is the interface's OCSPRequestDataList.
type OCSPRequestDataList struct {
	List []OCSPRequestData `json:"ocsp_request_data_list"`
}

// GetV2GOCSPRequestData lists what the OCPP stack must ask OCSP responders about for the
// station's ISO 15118 certificates: every certificate below the root of every SECC chain that
// verifies against the V2G domain now or, for a leaf that is not valid yet, once it starts (so
// the status is ready when it becomes active), each once, with the first OCSP responder URL of
// its AIA extension. Certificates without one are left out, and so are expired leaves and leaves
// the V2G domain does not trust (a station never serves them). The answer is kept until the
// store changes or a certificate involved starts or ends, and is shared by later calls: callers
// must not modify it.
func (s *Store) GetV2GOCSPRequestData() OCSPRequestDataList {
	unlock := s.lock.rlock()
	defer unlock()
	v := s.readCAs()
	ls := s.readLeaves(LeafV2G)
	now := s.now()
	if res, ok := ls.ocspRequestFor(v, now); ok {
		return res
	}
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
	pool := s.hashPool(v, ls)
	seen := map[string]bool{}
	cas := v.bundleCerts(CAV2G)
	// One forest per leaf (see requestRank): within a budget, so that many leaves under a large
	// bundle keep the store's order rather than cost quadratic time per leaf.
	ordered := (len(cas)+4)*(len(cas)+4)*len(ls.entries) <= 1<<22
	valid := func(c *x509.Certificate) bool { return validityAt(c, now) == validNow }
	for _, e := range ls.entries {
		if validityAt(e.cert, now) == expired {
			continue
		}
		chain, err := s.verifyLeaf(v, ls, e, now, true)
		if err != nil {
			s.log.Info("get_v2g_ocsp_request_data: leaf left out, it does not verify against the V2G domain", "leaf", describe(e.cert), "err", err)
			continue
		}
		var rank orderRank
		if ordered {
			rank = requestRank(pool, cas, e.fileChain(), valid)
		}
		res.List = append(res.List, s.requestData(pool, nil, chain, seen, rank)...)
	}
	// Kept for as long as the store does not change: without the slack of appending.
	res.List = append(make([]OCSPRequestData, 0, len(res.List)), res.List...)
	ls.keepOCSPRequest(v, now, res)
	return res
}

// GetMOOCSPRequestData lists the OCSP request data of a contract certificate chain (in any order:
// the leaf is the certificate that issued none of the others, see chainLeaf):
// the chain must verify against the V2G or the MO domain (contract certificates are issued under
// either), with every certificate of the input on the verified path; then every certificate of
// the verified chain below the root that has an OCSP URL. A
// chain that includes its root gives the same answer as one without (the reference gave none).
func (s *Store) GetMOOCSPRequestData(chainPEM string) OCSPRequestDataList {
	res := OCSPRequestDataList{List: []OCSPRequestData{}}
	if s.tooLarge("get_mo_ocsp_request_data", chainPEM) {
		return res
	}
	cs, err := certs.ParseCertificates([]byte(chainPEM))
	if err != nil || len(cs) == 0 {
		s.log.Warn("get_mo_ocsp_request_data: no certificate in input", "err", err)
		return res
	}
	unlock := s.lock.rlock()
	v := s.readCAs()
	unlock()
	trusted := v.domainPool(CAV2G, CAMO)
	leaf, inter := chainLeaf(cs)
	now := s.now()
	path, err := certs.Verify(leaf, certs.VerifyOptions{Trusted: trusted, Intermediates: inter, Time: now})
	if err != nil {
		s.log.Warn("get_mo_ocsp_request_data: chain does not verify against the V2G or MO domain", "err", err)
		return res
	}
	// The answer is about the chain as sent: a certificate of the input that is not on the
	// verified path (a stray certificate, or a sub-CA sent with a leaf it did not issue) makes
	// it no chain, and it gets no request data, as in the reference (every certificate received
	// must be below the root it found), rather than data for the part that happens to verify.
	onPath := make(map[certs.Fingerprint]bool, len(path))
	for _, c := range path {
		onPath[certs.FingerprintOf(c)] = true
	}
	for _, c := range cs {
		if !onPath[certs.FingerprintOf(c)] {
			s.log.Warn("get_mo_ocsp_request_data: a certificate of the input is not on the verified chain", "cert", describe(c))
			return res
		}
	}
	// In the reference's order: V2G bundle, MO bundle, then the input (see requestRank).
	cas := append(v.bundleCerts(CAV2G), v.bundleCerts(CAMO)...)
	var rank orderRank
	if len(cas)+len(cs) <= maxOrdered {
		// The input's certificates link among themselves too, as the verified path says.
		rank = requestRank(newChainLinker(trusted, path), cas, cs, func(c *x509.Certificate) bool { return validityAt(c, now) == validNow })
	}
	// Every CA of the store, so that a trust anchor that is not a root still gets its issuer
	// key hash when its issuer is in another domain; then the input's certificates.
	res.List = append(res.List, s.requestData(v.all, cs, path, map[string]bool{}, rank)...)
	return res
}

// chainLeaf picks the certificate a chain is about: the first one that issued none of the
// others, and returns the rest as path elements. A chain sent leaf first (ISO 15118-2's order) is
// unchanged; one sent root or sub-CA first is read as the reference reads it (it builds the
// hierarchy from the certificates, in any order), so its leaf is not mistaken for an
// intermediate. When every certificate issued another (a cycle of cross-signed CAs) the first is
// the leaf.
func chainLeaf(cs []*x509.Certificate) (*x509.Certificate, []*x509.Certificate) {
	if len(cs) > 1 {
		p := certs.NewPool(cs...)
		for i, c := range cs {
			if len(p.Children(c)) == 0 {
				rest := append(append([]*x509.Certificate{}, cs[:i]...), cs[i+1:]...)
				return c, rest
			}
		}
	}
	return cs[0], cs[1:]
}

// requestData makes the request data of a verified chain (leaf first, trust anchor last): one
// entry for each certificate below the root that has an OCSP URL, its hash data computed against
// the next certificate of the chain (the issuer the chain was verified through; for a trust
// anchor that is not a root, its first issuer in pool, else in extra). Entries whose hash data
// is in seen already are skipped. The entries are in the order of rank (the reference's, see
// requestRank) before seen is applied.
func (s *Store) requestData(pool *certs.Pool, extra []*x509.Certificate, chain []*x509.Certificate, seen map[string]bool, rank orderRank) []OCSPRequestData {
	type entry struct {
		c    *x509.Certificate
		data OCSPRequestData
	}
	var found []entry
	for i, c := range chain {
		if pool.IsSelfSigned(c) {
			continue // the root: nobody answers for it
		}
		if len(c.OCSPServer) == 0 {
			s.log.Debug("no OCSP responder URL; no request data", "cert", describe(c))
			continue
		}
		var issuer *x509.Certificate
		if i+1 < len(chain) {
			issuer = chain[i+1]
		} else if issuer = issuerIn(pool, extra, c); issuer == nil {
			s.log.Warn("issuer unknown; no OCSP request data", "cert", describe(c))
			continue
		}
		h, err := certs.ComputeHashData(c, issuer, certs.SHA256)
		if err != nil {
			s.log.Warn("no OCSP request data", "cert", describe(c), "err", err)
			continue
		}
		// The pool keeps the same hash data for most certificates: sharing its strings keeps a
		// kept answer of thousands of leaves small.
		if ph, ok := pool.HashData(c, certs.SHA256); ok && ph == h {
			h = ph
		}
		found = append(found, entry{c, OCSPRequestData{HashData: h, ResponderURL: c.OCSPServer[0]}})
	}
	sortByRank(found, rank, func(e entry) *x509.Certificate { return e.c })
	var out []OCSPRequestData
	for _, e := range found {
		key := string(formatHashFile(e.data.HashData))
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e.data)
	}
	return out
}

// issuerIn is the first issuer of c in pool, else among extra (the caller's own certificates,
// looked at only when the store has none: a pool of them is built only then).
func issuerIn(pool *certs.Pool, extra []*x509.Certificate, c *x509.Certificate) *x509.Certificate {
	if is := pool.Issuer(c); is != nil || len(extra) == 0 {
		return is
	}
	return certs.NewPool(extra...).Issuer(c)
}
