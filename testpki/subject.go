package testpki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"unicode/utf8"
)

// Attribute types of the subject names this package writes.
var (
	oidCountry         = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization    = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidCommonName      = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// encodeSubject builds the DER subject name C, O, CN, DC (empty ones left out), one attribute per
// RDN. It is built by hand because pkix.Name has no DC field and would encode an extra DC
// attribute as PrintableString, while ISO 15118-2 and OpenSSL-made certificates use IA5String.
func encodeSubject(spec Spec) ([]byte, error) {
	if spec.Country != "" {
		if len(spec.Country) != 2 || !isPrintableString(spec.Country) {
			return nil, fmt.Errorf("testpki: country %q is not a two-letter PrintableString", spec.Country)
		}
	}
	for _, f := range []struct{ name, value string }{
		{"organization", spec.Organization},
		{"common name", spec.CommonName},
	} {
		if !utf8.ValidString(f.value) {
			return nil, fmt.Errorf("testpki: %s %q is not valid UTF-8", f.name, f.value)
		}
	}
	if !isIA5String(spec.DomainComponent) {
		return nil, fmt.Errorf("testpki: domain component %q is not an IA5String (ASCII)", spec.DomainComponent)
	}

	var rdns pkix.RDNSequence
	add := func(oid asn1.ObjectIdentifier, tag int, value string) {
		if value == "" {
			return
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{
			Type:  oid,
			Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(value)},
		}})
	}
	add(oidCountry, asn1.TagPrintableString, spec.Country)
	add(oidOrganization, asn1.TagUTF8String, spec.Organization)
	add(oidCommonName, asn1.TagUTF8String, spec.CommonName)
	add(oidDomainComponent, asn1.TagIA5String, spec.DomainComponent)
	der, err := asn1.Marshal(rdns)
	if err != nil {
		return nil, fmt.Errorf("testpki: encoding subject: %w", err)
	}
	return der, nil
}

// isPrintableString reports whether s uses only the PrintableString alphabet of X.680.
func isPrintableString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == ' ', c == '\'', c == '(', c == ')', c == '+', c == ',', c == '-', c == '.',
			c == '/', c == ':', c == '=', c == '?':
		default:
			return false
		}
	}
	return true
}

// isIA5String reports whether s is 7-bit ASCII, the IA5String alphabet.
func isIA5String(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
