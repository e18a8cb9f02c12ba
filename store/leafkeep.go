package store

import (
	"crypto/x509"
	"path/filepath"

	"github.com/evsesec/evsesec/certs"
)

// keepLeavesNamed runs before CA certificates are cut out of bundles (drops: per bundle path, the
// certificates leaving it). A station leaf is named by hash data computed with its issuer's key;
// when the issuer is only in a bundle (a leaf installed without a chain file, a CSMS leaf directly
// under its root) and the deletion takes it away, the leaf — still on disk with its key — could
// no longer be listed, asked about or deleted (DESIGN §3 row 8). So the leaf keeps what names it:
// its issuers up to the root, as the store knew them, are written into a new chain file of the
// leaf in its directory, the leaf's own file like the chain file update_leaf_certificate writes.
// The root is in that file only when it issued the leaf itself (there is nothing else to name the
// leaf by). The chain files are certificates of the leaf's directory, never trust anchors: the
// leaf stays untrusted (not handed out) until a root it chains to is installed again, and is
// removed with them when it is deleted. A leaf that the deletion leaves nameable is not touched.
// A write that fails fails the deletion before any bundle is touched (the chain files already
// written are removed again), as for every write of the store: Failed, and nothing changed.
func (s *Store) keepLeavesNamed(v *caView, drops map[string]map[certs.Fingerprint]bool) error {
	sets := []*leafSet{s.readLeaves(LeafV2G), s.readLeaves(LeafCSMS)}
	before := s.hashPool(v, sets...)
	var stay []*x509.Certificate
	for _, t := range CATypes {
		b := v.bundles[t]
		for _, f := range b.files {
			for _, c := range f.certs {
				if !drops[b.path][certs.FingerprintOf(c)] {
					stay = append(stay, c)
				}
			}
		}
	}
	for _, ls := range sets {
		for _, f := range ls.files {
			stay = append(stay, f.certs...)
		}
	}
	after := certs.NewPool(stay...)
	seen := map[string]bool{}
	var written []string
	for _, ls := range sets {
		for _, e := range ls.entries {
			key := ls.certDir + "\x00" + string(e.fp[:])
			if seen[key] {
				continue // one directory for both types: the leaf once
			}
			seen[key] = true
			if _, ok := before.HashData(e.cert, certs.SHA256); !ok {
				continue // not nameable now either: nothing to keep
			}
			if _, ok := after.HashData(e.cert, certs.SHA256); ok {
				continue
			}
			chain := []*x509.Certificate{e.cert}
			for c := e.cert; ; {
				is := before.Issuer(c)
				if is == nil || containsFP(chain, is) {
					break
				}
				if before.IsSelfSigned(is) && len(chain) > 1 {
					break // the verified chain without the root, as update_leaf_certificate writes it
				}
				chain = append(chain, is)
				if before.IsSelfSigned(is) {
					break
				}
				c = is
			}
			path := filepath.Join(ls.certDir, chainFileName(ls.lt, s.newFileID()))
			if err := writeAtomic(s.fs, path, certs.EncodePEM(chain...), 0o644, 0o755); err != nil {
				s.log.Error("delete_certificate: cannot keep the issuers of a leaf whose CA is deleted; not deleting",
					"leaf", describe(e.cert), "path", path, "err", err)
				for _, w := range written {
					if rerr := removeDurable(s.fs, w); rerr != nil {
						s.log.Warn("cannot remove a chain file after a failed deletion", "path", w, "err", rerr)
					}
				}
				return err
			}
			written = append(written, path)
			s.log.Info("delete_certificate: kept the issuers of a leaf whose CA is deleted in a chain file of the leaf, so it stays listed and deletable",
				"leaf", describe(e.cert), "path", path, "certificates", len(chain))
		}
	}
	return nil
}

// containsFP reports whether cs holds c.
func containsFP(cs []*x509.Certificate, c *x509.Certificate) bool {
	fp := certs.FingerprintOf(c)
	for _, x := range cs {
		if certs.FingerprintOf(x) == fp {
			return true
		}
	}
	return false
}
