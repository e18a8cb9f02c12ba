package certs

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// attributeNames are the short names OpenSSL prints for the attributes an EV PKI uses; Go's
// pkix.Name.String does not know DC and prints it as a raw OID.
var attributeNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
	"2.5.4.5": "serialNumber", "0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "emailAddress",
}

// NameString formats a raw DER name in the order it is encoded, the way `openssl x509 -subject`
// prints it (C=DE, O=EVerest, CN=SECCCert, DC=CPO), for logs and listings.
func NameString(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return fmt.Sprintf("<unparsable name %x>", raw)
	}
	var parts []string
	for _, rdn := range rdns {
		var multi []string
		for _, atv := range rdn {
			name, ok := attributeNames[atv.Type.String()]
			if !ok {
				name = atv.Type.String()
			}
			multi = append(multi, fmt.Sprintf("%s=%v", name, atv.Value))
		}
		parts = append(parts, strings.Join(multi, " + "))
	}
	return strings.Join(parts, ", ")
}
