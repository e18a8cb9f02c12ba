package certs

import (
	"fmt"
	"log"
	"os"
)

// The OCPP hash data of a leaf is computed against its issuer, here the second certificate of
// the chain file the leaf came with. SubjectHash gives the name OpenSSL's hashed CA directories
// use for the leaf.
func ExampleComputeHashData() {
	leafPEM, err := os.ReadFile("../testdata/reference/csms_certs/client/SECC_LEAF_B.pem")
	if err != nil {
		log.Fatal(err)
	}
	chainPEM, err := os.ReadFile("../testdata/reference/csms_certs/client/CPO_CERT_SECC_LEAF_CHAIN_B.pem")
	if err != nil {
		log.Fatal(err)
	}
	leaf, err := ParseCertificates(leafPEM)
	if err != nil {
		log.Fatal(err)
	}
	chain, err := ParseCertificates(chainPEM)
	if err != nil {
		log.Fatal(err)
	}

	h, err := ComputeHashData(leaf[0], chain[1], SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(h.Algorithm)
	fmt.Println(h.IssuerNameHash)
	fmt.Println(h.IssuerKeyHash)
	fmt.Println(h.SerialNumber)
	fmt.Println(h.Equal(HashData{Algorithm: SHA256, IssuerNameHash: h.IssuerNameHash,
		IssuerKeyHash: h.IssuerKeyHash, SerialNumber: "004ED698D63C724C6A61A0CCC4FF80B383192DFD7A"}))
	fmt.Println(FormatNameHash(SubjectHash(leaf[0])))
	// Output:
	// SHA256
	// 82addb4b47026c702b9ed9d482c6e3570bbae9c49b963ec18b0a3523dfb47fe3
	// e9d2a6d245233edbf5a8319b99087313e16307ca29b388373d951b50e93090aa
	// 4ed698d63c724c6a61a0ccc4ff80b383192dfd7a
	// true
	// 820d4a91
}
