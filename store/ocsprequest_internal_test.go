package store

import (
	"crypto/x509"
	"testing"

	"github.com/evsesec/evsesec/certs"
)

// get_mo_ocsp_request_data looks for the issuer of a trust anchor that is not a root among the
// store's CAs first and only then among the caller's certificates, the order of the one pool it
// used to build per call.
func TestIssuerInStoreFirstThenInput(t *testing.T) {
	root := mustRoot(t, caSpec("IssuerRoot"))
	sub := mustIssue(t, root, caSpec("IssuerSub"))
	otherRoot := mustRoot(t, caSpec("IssuerRoot")) // same name, another key: not sub's issuer
	stored := certs.NewPool(root.Cert)
	empty := certs.NewPool()
	if got := issuerIn(stored, []*x509.Certificate{otherRoot.Cert}, sub.Cert); got != root.Cert {
		t.Errorf("issuer from the store's pool: %v", got)
	}
	if got := issuerIn(empty, []*x509.Certificate{otherRoot.Cert, root.Cert}, sub.Cert); got != root.Cert {
		t.Errorf("issuer from the input: %v", got)
	}
	if got := issuerIn(empty, []*x509.Certificate{otherRoot.Cert}, sub.Cert); got != nil {
		t.Errorf("issuer found where there is none: %v", got)
	}
	if got := issuerIn(empty, nil, sub.Cert); got != nil {
		t.Errorf("issuer found in an empty pool: %v", got)
	}
}
