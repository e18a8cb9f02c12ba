package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evsesec/evsesec/testpki"
)

// Store is a generated store: its certs root and the PKI that issued it.
type Store struct {
	Root string
	PKI  *testpki.PKI
	// Leaves is the number of SECC leaves; Expired and Future how many of them are expired and
	// not valid yet.
	Leaves, Expired, Future int
}

// Generate writes an EVerest default layout with n SECC leaves under dir: the test PKI, then n
// leaves issued by CPO Sub-CA 2, each as a single file, a chain file (leaf, Sub-CA 2, Sub-CA 1)
// and a plain key named like its single file. A third of the leaves are expired, one in ten is
// not valid yet, the rest valid with notAfter spread over the next years, so selection has to
// look past many candidates.
func Generate(dir string, n int, now time.Time) (*Store, error) {
	p, err := testpki.Generate(testpki.Options{Now: now})
	if err != nil {
		return nil, err
	}
	if _, err := p.WriteLayout(dir, ""); err != nil {
		return nil, err
	}
	st := &Store{Root: dir, PKI: p, Leaves: n}
	cso := filepath.Join(dir, "client", "cso")
	for i := 0; i < n; i++ {
		nb, na := now.Add(-time.Hour), now.AddDate(1, 0, i%700)
		switch {
		case i%3 == 0:
			nb, na = now.AddDate(-2, 0, 0), now.AddDate(-1, 0, -(i%300))
			st.Expired++
		case i%10 == 1:
			nb, na = now.AddDate(1, 0, i%100), now.AddDate(4, 0, 0)
			st.Future++
		}
		leaf, err := p.CPOSubCA2.Issue(testpki.Spec{
			CommonName: fmt.Sprintf("SECC%05d", i), Organization: testpki.Organization, Country: testpki.Country,
			DomainComponent: "CPO", NotBefore: nb, NotAfter: na, OCSPURLs: []string{testpki.DefaultOCSPURL},
		})
		if err != nil {
			return nil, err
		}
		key, err := leaf.KeyPEM("")
		if err != nil {
			return nil, err
		}
		stem := fmt.Sprintf("SECC_LEAF_%05d", i)
		files := map[string][]byte{
			stem + ".pem": leaf.CertPEM(),
			fmt.Sprintf("CPO_CERT_SECC_LEAF_CHAIN_%05d.pem", i): leaf.ChainPEM(),
			stem + ".key": key,
		}
		for name, data := range files {
			mode := os.FileMode(0o644)
			if filepath.Ext(name) == ".key" {
				mode = 0o600
			}
			if err := os.WriteFile(filepath.Join(cso, name), data, mode); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}
