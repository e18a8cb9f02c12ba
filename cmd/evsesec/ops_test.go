package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// opsStore writes the test PKI into a fresh tree and returns its root.
func opsStore(t *testing.T, password string) (string, *testpki.PKI) {
	t.Helper()
	root := t.TempDir()
	p, _ := writePKI(t, root, testpki.Options{Password: password})
	return root, p
}

// TestLsListsEveryCertificate: `ls --json` lists the four roots, both leaves with their key and
// the sub-CAs of the SECC chain; the table names the key of the leaf in use.
func TestLsListsEveryCertificate(t *testing.T) {
	root, _ := opsStore(t, "")
	out, errOut, code := runCLI("ls", "--certs", root, "--json")
	if code != 0 {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	var recs []store.CertificateRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	kinds := map[string]int{}
	for _, r := range recs {
		kinds[r.Kind]++
		if r.Kind == "leaf" {
			if r.KeyStatus != "ok" || r.KeyLocation != "file" || !r.InUse || r.Validity != "valid" || r.DaysLeft < 700 {
				t.Errorf("leaf record %+v: want key ok in a file, in use, valid, ~2 years left", r)
			}
		}
	}
	if kinds["ca"] != 4 || kinds["leaf"] != 2 || kinds["chain"] != 2 {
		t.Fatalf("ls: %v records by kind, want 4 ca, 2 leaf, 2 chain", kinds)
	}
	out, _, code = runCLI("ls", "--certs", root)
	if code != 0 || !strings.Contains(out, "DC=CPO") || !strings.Contains(out, filepath.Join(root, "client", "cso", "SECC_LEAF.key")+" (in use)") {
		t.Fatalf("ls table (exit %d):\n%s", code, out)
	}
}

// TestDoctor: a healthy store has no problems (exit 0); a broken one gets each problem named
// with a fix and exit 1, and doctor changes nothing on disk.
func TestDoctor(t *testing.T) {
	root, p := opsStore(t, "")
	if out, _, code := runCLI("doctor", "--certs", root); code != 0 || !strings.Contains(out, "no problems found") {
		t.Fatalf("healthy store: exit %d\n%s", code, out)
	}

	// Break it: the MF bundle goes, a file that does not parse, a key without a leaf, a key
	// encrypted with another password, a leaf without its key, a world-readable key.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(filepath.Join(root, "ca", "mf", "MF_ROOT_CA.pem")))
	must(os.WriteFile(filepath.Join(root, "client", "cso", "BROKEN.pem"), []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o644))
	orphan, err := testpki.GenerateKey("P-256")
	must(err)
	orphanPEM, err := (&testpki.Issued{Key: orphan}).KeyPEM("")
	must(err)
	must(os.WriteFile(filepath.Join(root, "client", "cso", "ORPHAN.key"), orphanPEM, 0o600))
	other, err := testpki.GenerateKey("P-256")
	must(err)
	otherPEM, err := (&testpki.Issued{Key: other}).KeyPEM("secret")
	must(err)
	must(os.WriteFile(filepath.Join(root, "client", "cso", "OTHER.key"), otherPEM, 0o600))
	must(os.Remove(filepath.Join(root, "client", "csms", "CSMS_LEAF.key")))
	must(os.Chmod(filepath.Join(root, "client", "cso", "SECC_LEAF.key"), 0o644))
	_ = p

	before := treeBytes(t, root)
	out, _, code := runCLI("doctor", "--certs", root, "--json")
	if code != 1 {
		t.Fatalf("broken store: exit %d, want 1\n%s", code, out)
	}
	var fs []store.Finding
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	want := []struct{ sev, path, problem string }{
		{"warning", "MF_ROOT_CA.pem", "no bundle"},
		{"error", "BROKEN.pem", "does not parse"},
		{"info", "ORPHAN.key", "key without a certificate"},
		{"error", "OTHER.key", "is encrypted but no password"},
		{"warning", "CSMS_LEAF.pem", "no private key"},
		{"warning", "SECC_LEAF.key", "readable by others"},
	}
	for _, w := range want {
		found := false
		for _, f := range fs {
			if f.Severity == w.sev && strings.HasSuffix(f.Path, w.path) && strings.Contains(f.Problem, w.problem) && f.Fix != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("doctor did not report %s %s %q; findings:\n%s", w.sev, w.path, w.problem, out)
		}
	}
	if after := treeBytes(t, root); !equalTrees(before, after) {
		t.Error("doctor changed the store")
	}
}

func treeBytes(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[p] = fi.Mode().String() + string(b)
		}
		return nil
	})
	return out
}

func equalTrees(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
