package testpki_test

import (
	"crypto/x509"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/evsesec/evsesec/testpki"
)

// Generate the standard PKI and write it as an EVerest certificate tree, as `evsesec pki init`
// does.
func ExamplePKI_WriteLayout() {
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "certs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := p.WriteLayout(dir, "123456")
	if err != nil {
		log.Fatal(err)
	}
	rel, err := filepath.Rel(dir, l.SECCChain)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(l.Files()), "files")
	fmt.Print(filepath.ToSlash(rel), ":")
	for _, c := range p.SECCLeaf.Chain() {
		fmt.Print(" ", c.Subject.CommonName)
	}
	fmt.Println()
	// Output:
	// 33 files
	// client/cso/CPO_CERT_CHAIN.pem: SECCCert CPOSubCA2 CPOSubCA1
}

// Cross-sign a new root with the old one, so stations that trust only the old root accept chains
// under the new one (root rollover).
func ExampleIssued_Issue_crossSign() {
	oldRoot, err := testpki.SelfSigned(testpki.Spec{CommonName: "Root 2020", IsCA: true, MaxPathLen: -1})
	if err != nil {
		log.Fatal(err)
	}
	newSpec := testpki.Spec{CommonName: "Root 2030", IsCA: true, MaxPathLen: -1}
	newRoot, err := testpki.SelfSigned(newSpec)
	if err != nil {
		log.Fatal(err)
	}
	newSpec.Key = newRoot.Key // same subject and key, signed by the old root
	cross, err := oldRoot.Issue(newSpec)
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := newRoot.Issue(testpki.Spec{CommonName: "SECCCert", DomainComponent: "CPO"})
	if err != nil {
		log.Fatal(err)
	}

	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(oldRoot.Cert)
	inter.AddCert(cross.Cert)
	chains, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	fmt.Println(len(chains[0]), err)
	// Output: 3 <nil>
}
