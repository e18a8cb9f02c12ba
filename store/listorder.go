package store

import (
	"crypto/x509"
	"sort"

	"github.com/evsesec/evsesec/certs"
)

// The interface gives no order to its lists, but a caller that compares answers with the
// reference's as sent sees every other order as a difference. So the lists are put in the order
// in which the reference walks its certificate forest, wherever that order follows from file
// contents: the order of certificates within a bundle file, bundle files by path, a chain in its
// file or input. What is in a list is decided elsewhere; this file only orders it.
//
// The reference arranges a set of certificates, inserted one by one, as a forest:
//   - a self-signed certificate becomes a new top entry, and every earlier top entry that is not
//     self-signed and that it issued moves below it (appended to its children, in top order);
//   - any other certificate is looked for breadth first (top entries, then their children level
//     by level): at the first certificate it issued, it takes that one's place with it as its
//     only child; at the first certificate that issued it, it is appended to the children; with
//     neither it becomes a top entry;
//   - when all are in and there is more than one top entry, every top entry that is not
//     self-signed is, in top order, appended to the children of the first certificate (breadth
//     first) that issued it, if any.
//
// Copies of one certificate are separate nodes. Lists walk the forest depth first, a node before
// its children (pre-order). Linking here is the pool's (names, key identifiers, signature),
// without the reference's time checks: an expired certificate, which the reference cannot
// link, is ordered where it would be if it were valid.
type orderNode struct {
	c        *x509.Certificate
	fp       certs.Fingerprint
	self     bool
	orphan   bool // a top entry without issuer after pruning
	children []*orderNode
}

// issuerLinker answers who issued whom while a forest is built; a *certs.Pool is one.
type issuerLinker interface {
	Issuers(c *x509.Certificate) []*x509.Certificate
	IsSelfSigned(c *x509.Certificate) bool
}

// chainLinker links through a long-lived pool (a domain pool, whose signature checks are cached
// with the view) and, for a caller's input, through the chain it was verified as: path[i+1]
// issued path[i]. Building one pool of both per call would check every signature anew on every
// call, for an order that verification has already established.
type chainLinker struct {
	kept   *certs.Pool
	issuer map[certs.Fingerprint]*x509.Certificate
}

// newChainLinker links through kept and the verified path (leaf first).
func newChainLinker(kept *certs.Pool, path []*x509.Certificate) chainLinker {
	l := chainLinker{kept: kept, issuer: make(map[certs.Fingerprint]*x509.Certificate, len(path))}
	for i := 0; i+1 < len(path); i++ {
		l.issuer[certs.FingerprintOf(path[i])] = path[i+1]
	}
	return l
}

// Issuers returns the issuers of c in the kept pool, and its issuer on the path when that one
// is not in the pool.
func (l chainLinker) Issuers(c *x509.Certificate) []*x509.Certificate {
	out := l.kept.Issuers(c)
	if i, ok := l.issuer[certs.FingerprintOf(c)]; ok && !l.kept.Contains(i) {
		out = append(out, i)
	}
	return out
}

// IsSelfSigned reports whether c is self-signed.
func (l chainLinker) IsSelfSigned(c *x509.Certificate) bool { return l.kept.IsSelfSigned(c) }

type orderForest struct {
	top     []*orderNode
	pool    issuerLinker
	issuers map[certs.Fingerprint][]certs.Fingerprint
	queue   []orderPlace // reused by bfs
}

type orderPlace struct {
	holder []*orderNode
	i      int
}

// maxOrdered bounds the certificates of one forest. Building it costs a walk of the forest per
// certificate; above this, a list keeps the store's own order (the certificates' order in the
// pool: files by path, file order) rather than letting a hostile bundle cost quadratic time.
const maxOrdered = 512

// newOrderForest arranges cs, inserted in the given order, as the reference does. pool answers
// who issued whom; it need not hold the certificates.
func newOrderForest(pool issuerLinker, cs []*x509.Certificate) *orderForest {
	f := &orderForest{pool: pool, issuers: map[certs.Fingerprint][]certs.Fingerprint{}}
	for _, c := range cs {
		f.insert(c)
	}
	f.prune()
	return f
}

// issued reports whether parent issued child.
func (f *orderForest) issued(parent, child *orderNode) bool {
	if child.self {
		return false
	}
	is, ok := f.issuers[child.fp]
	if !ok {
		is = []certs.Fingerprint{}
		for _, c := range f.pool.Issuers(child.c) {
			is = append(is, certs.FingerprintOf(c))
		}
		f.issuers[child.fp] = is
	}
	for _, fp := range is {
		if fp == parent.fp {
			return true
		}
	}
	return false
}

// bfs calls visit for every node, breadth first, with the slice that holds it and its index,
// until visit returns true.
func (f *orderForest) bfs(visit func(holder []*orderNode, i int) bool) {
	queue := f.queue[:0]
	defer func() { f.queue = queue[:0] }()
	for i, n := range f.top {
		if visit(f.top, i) {
			return
		}
		for j := range n.children {
			queue = append(queue, orderPlace{n.children, j})
		}
	}
	for k := 0; k < len(queue); k++ {
		p := queue[k]
		if visit(p.holder, p.i) {
			return
		}
		n := p.holder[p.i]
		for j := range n.children {
			queue = append(queue, orderPlace{n.children, j})
		}
	}
}

func (f *orderForest) insert(c *x509.Certificate) {
	n := &orderNode{c: c, fp: certs.FingerprintOf(c), self: f.pool.IsSelfSigned(c)}
	if n.self {
		rest := f.top[:0:0]
		for _, t := range f.top {
			if !t.self && f.issued(n, t) {
				n.children = append(n.children, t)
				continue
			}
			rest = append(rest, t)
		}
		f.top = append(rest, n)
		return
	}
	found := false
	f.bfs(func(holder []*orderNode, i int) bool {
		t := holder[i]
		switch {
		case f.issued(n, t):
			n.children = append(n.children, t)
			holder[i] = n // the slice shares its array with the parent's children (or top)
			found = true
		case f.issued(t, n):
			t.children = append(t.children, n)
			found = true
		}
		return found
	})
	if !found {
		f.top = append(f.top, n)
	}
}

func (f *orderForest) prune() {
	if len(f.top) <= 1 {
		return
	}
	for i := 0; i < len(f.top); i++ {
		o := f.top[i]
		if o.self || o.orphan {
			continue
		}
		found := false
		f.bfs(func(holder []*orderNode, j int) bool {
			if t := holder[j]; t != o && f.issued(t, o) {
				t.children = append(t.children, o)
				found = true
			}
			return found
		})
		if !found {
			o.orphan = true
			continue
		}
		f.top = append(f.top[:i:i], f.top[i+1:]...)
		i--
	}
}

// preorder appends n's descendants (without n) depth first, a node before its children.
func preorder(n *orderNode, out []*orderNode) []*orderNode {
	for _, ch := range n.children {
		out = append(out, ch)
		out = preorder(ch, out)
	}
	return out
}

// orderRank maps certificates to their place in a list; certificates it does not know go last,
// in the order they had.
type orderRank map[certs.Fingerprint]int

func (r orderRank) add(fp certs.Fingerprint) {
	if _, ok := r[fp]; !ok {
		r[fp] = len(r)
	}
}

func (r orderRank) of(c *x509.Certificate) int {
	if i, ok := r[certs.FingerprintOf(c)]; ok {
		return i
	}
	return len(r)
}

// listingRank is the order of get_installed_certificates for one domain: the domain's
// certificates (bundle files by path, each in file order) inserted last to first; then each top
// entry followed by its descendants in pre-order, top entries in forest order.
func listingRank(pool issuerLinker, fileOrder []*x509.Certificate) orderRank {
	if len(fileOrder) > maxOrdered {
		return nil
	}
	rev := make([]*x509.Certificate, len(fileOrder))
	for i, c := range fileOrder {
		rev[len(fileOrder)-1-i] = c
	}
	f := newOrderForest(pool, rev)
	r := orderRank{}
	for _, t := range f.top {
		r.add(t.fp)
		for _, d := range preorder(t, nil) {
			r.add(d.fp)
		}
	}
	return r
}

// requestRank is the order of OCSP request data for a chain: the CA certificates (in bundle
// order) inserted first, then the chain's certificates as they come; then, for each self-signed
// top entry that is valid at now and has every certificate of the chain below it, its
// descendants in reverse pre-order (leaf towards root). Other top entries follow in the same
// way, so that every certificate has a place.
func requestRank(pool issuerLinker, cas, chain []*x509.Certificate, now validAt) orderRank {
	if len(cas)+len(chain) > maxOrdered {
		return nil
	}
	all := make([]*x509.Certificate, 0, len(cas)+len(chain))
	all = append(append(all, cas...), chain...)
	f := newOrderForest(pool, all)
	r := orderRank{}
	var later [][]*orderNode
	for _, t := range f.top {
		ds := preorder(t, nil)
		if t.self && now(t.c) && coversChain(ds, chain) {
			for i := len(ds) - 1; i >= 0; i-- {
				r.add(ds[i].fp)
			}
			continue
		}
		later = append(later, append(ds, t))
	}
	for _, ds := range later {
		for i := len(ds) - 1; i >= 0; i-- {
			r.add(ds[i].fp)
		}
	}
	return r
}

type validAt func(*x509.Certificate) bool

func coversChain(ds []*orderNode, chain []*x509.Certificate) bool {
	if len(ds) == 0 {
		return false
	}
	in := make(map[certs.Fingerprint]bool, len(ds))
	for _, d := range ds {
		in[d.fp] = true
	}
	for _, c := range chain {
		if !in[certs.FingerprintOf(c)] {
			return false
		}
	}
	return true
}

// sortByRank orders xs stably by the rank of the certificate of each; a nil rank leaves them.
func sortByRank[T any](xs []T, r orderRank, cert func(T) *x509.Certificate) {
	if r == nil {
		return
	}
	sort.SliceStable(xs, func(i, j int) bool { return r.of(cert(xs[i])) < r.of(cert(xs[j])) })
}

// bundleCerts is what the reference reads from domain t's bundle: its files by path, each in
// file order, copies included.
func (v *caView) bundleCerts(t CAType) []*x509.Certificate {
	var out []*x509.Certificate
	for _, f := range v.bundles[t].files {
		out = append(out, f.certs...)
	}
	return out
}

// fileChain is the leaf's chain as its file holds it: its first chain file, else the leaf alone.
func (e *leafEntry) fileChain() []*x509.Certificate {
	if len(e.chains) > 0 {
		return e.chains[0].certs
	}
	return []*x509.Certificate{e.cert}
}
