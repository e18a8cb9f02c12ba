package store

import (
	"syscall"
	"testing"

	"github.com/evsesec/evsesec/certs"
	"github.com/evsesec/evsesec/testpki"
)

// TestKeepLeavesNamedWriteFails: when the chain file that keeps a leaf nameable cannot be
// written (ENOSPC in the leaf directory), deleting its root fails with Failed and changes nothing
// on disk, rather than leaving a leaf no hash data names.
func TestKeepLeavesNamedWriteFails(t *testing.T) {
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if _, err := p.WriteLayout(root, ""); err != nil {
		t.Fatal(err)
	}
	ts := openCAStore(t, root, withFS(&faultFS{failCreate: under(root + "/client/csms"), err: syscall.ENOSPC}))
	before := snapshotTree(t, root)
	h, err := certs.ComputeHashData(p.CSMSRoot.Cert, p.CSMSRoot.Cert, certs.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.DeleteCertificate(h); got != DeleteFailed {
		t.Fatalf("delete_certificate of the CSMS root: %s, want Failed", got)
	}
	assertTreeUnchanged(t, root, before)
	if ev := ts.takeEvents(); len(ev) != 0 {
		t.Fatalf("events %+v after a failed deletion", ev)
	}
}
