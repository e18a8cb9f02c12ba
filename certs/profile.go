package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"
)

// KeyAlgorithm names the key of a certificate the way certificate profiles do. It is computed
// from the SubjectPublicKeyInfo, so keys Go cannot use (Ed448) are still named.
type KeyAlgorithm string

// The key algorithms the ISO 15118 profiles speak about; KeyOther is everything else.
const (
	KeyP256    KeyAlgorithm = "P-256"
	KeyP384    KeyAlgorithm = "P-384"
	KeyP521    KeyAlgorithm = "P-521"
	KeyEd25519 KeyAlgorithm = "Ed25519"
	KeyEd448   KeyAlgorithm = "Ed448"
	KeyRSA     KeyAlgorithm = "RSA"
	KeyOther   KeyAlgorithm = "other"
)

// oidEd448 is id-Ed448 (RFC 8410). Go's crypto/x509 parses a certificate with such a key but
// leaves PublicKey nil and PublicKeyAlgorithm unknown, so the OID is read from the raw SPKI.
var oidEd448 = asn1.ObjectIdentifier{1, 3, 101, 113}

// KeyAlgorithmOf names c's public key.
func KeyAlgorithmOf(c *x509.Certificate) KeyAlgorithm {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return KeyP256
		case elliptic.P384():
			return KeyP384
		case elliptic.P521():
			return KeyP521
		}
		return KeyOther
	}
	switch c.PublicKeyAlgorithm {
	case x509.Ed25519:
		return KeyEd25519
	case x509.RSA:
		return KeyRSA
	}
	if spkiAlgorithm(c.RawSubjectPublicKeyInfo).Equal(oidEd448) {
		return KeyEd448
	}
	return KeyOther
}

// spkiAlgorithm returns the algorithm OID of a DER SubjectPublicKeyInfo, or nil.
func spkiAlgorithm(spki []byte) asn1.ObjectIdentifier {
	var info struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil || len(rest) > 0 {
		return nil
	}
	return info.Algorithm.Algorithm
}

// oidSigEd448 is the Ed448 signature algorithm (RFC 8410 uses the key OID for both).
var oidSigEd448 = oidEd448

// SignatureName names the algorithm c is signed with: Go's name, or "Ed448", which Go does not
// know.
func SignatureName(c *x509.Certificate) string {
	if c.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
		return c.SignatureAlgorithm.String()
	}
	var outer struct {
		TBS       asn1.RawValue
		Algorithm struct {
			Algorithm asn1.ObjectIdentifier
		}
	}
	if _, err := asn1.Unmarshal(c.Raw, &outer); err == nil && outer.Algorithm.Algorithm.Equal(oidSigEd448) {
		return "Ed448"
	}
	return "unknown"
}

// ProfileRule names the part of a certificate profile a certificate failed, so a caller can map
// it onto its own result codes (the store: InvalidCommonName for the subject, InvalidFormat for
// the rest).
type ProfileRule string

// The rules of a Profile.
const (
	RuleEndEntity ProfileRule = "end-entity"
	RuleSubject   ProfileRule = "subject"
	RuleKeyUsage  ProfileRule = "key-usage"
	RuleKey       ProfileRule = "key"
	RuleSignature ProfileRule = "signature"
)

// ProfileError says which profile a certificate does not meet, which rule it breaks and why.
type ProfileError struct {
	Profile string
	Rule    ProfileRule
	Reason  string
}

// Error names the profile and the reason.
func (e *ProfileError) Error() string {
	return "not an " + e.Profile + " certificate: " + e.Reason
}

// Profile is the certificate profile of one standard and certificate role, as data: checking a
// certificate and making a CSR both read it, so a new standard is one more table (a Profile
// value), not new code paths.
type Profile struct {
	// Name is shown in reasons, e.g. "ISO 15118-20 SECC".
	Name string
	// Source is the part of the standard the table follows, for readers.
	Source string
	// DomainComponents are the DC values (IA5String) the subject may carry; the first one goes
	// into CSRs. Empty: no DC required.
	DomainComponents []string
	// KeyUsage must all be set; ForbiddenKeyUsage must not be.
	KeyUsage, ForbiddenKeyUsage x509.KeyUsage
	// Keys are the key algorithms allowed; the first one is the default of CSRs.
	Keys []KeyAlgorithm
	// Signatures are the signature algorithms (SignatureName) the certificate may be signed
	// with; empty means any.
	Signatures []string
}

// ISO15118_2SECC is the SECC leaf profile of ISO 15118-2 Annex F (Table F.2 and the SECC
// certificate row): DC=CPO, key usage digitalSignature and keyAgreement (ECDH in the TLS 1.2
// suites of -2), an EC P-256 key. EVerest issue 2119: a leaf without DC=CPO was installed and
// handed to cars, which must refuse it.
var ISO15118_2SECC = Profile{
	Name:             "ISO 15118-2 SECC",
	Source:           "ISO 15118-2 Annex F",
	DomainComponents: []string{"CPO"},
	KeyUsage:         x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
	Keys:             []KeyAlgorithm{KeyP256},
}

// ISO15118_20SECC is the SECC leaf profile of ISO 15118-20 Annex B (Table B.5): a P-521 key
// (the default) or Ed448, signed with ecdsa-with-SHA512 or Ed448, key usage digitalSignature
// (TLS 1.3 authenticates by signature; keys are agreed ephemerally, so keyAgreement is not
// needed and Ed448 keys cannot do it). The DC of Table B.5 is CSO; CPO, the -2 value under the
// same CPO sub-CAs, is accepted too, since EVerest#2683 names both and deployed -20 PKIs differ.
var ISO15118_20SECC = Profile{
	Name:              "ISO 15118-20 SECC",
	Source:            "ISO 15118-20 Annex B",
	DomainComponents:  []string{"CSO", "CPO"},
	KeyUsage:          x509.KeyUsageDigitalSignature,
	ForbiddenKeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	Keys:              []KeyAlgorithm{KeyP521, KeyEd448},
	Signatures:        []string{x509.ECDSAWithSHA512.String(), "Ed448"},
}

// Fits reports whether c's key is one the profile allows: what tells the leaves of two
// profiles apart before the other rules are checked.
func (p Profile) Fits(c *x509.Certificate) bool { return slices.Contains(p.Keys, KeyAlgorithmOf(c)) }

// Check returns nil when c meets the profile, else a *ProfileError for the first rule it breaks,
// in the order: end-entity, subject, key usage, key, signature (the order the ISO 15118-2
// check always had, so its result codes stay the same).
func (p Profile) Check(c *x509.Certificate) error {
	fail := func(r ProfileRule, format string, args ...any) error {
		return &ProfileError{Profile: p.Name, Rule: r, Reason: fmt.Sprintf(format, args...)}
	}
	if c.IsCA {
		return fail(RuleEndEntity, "it is a CA certificate")
	}
	if len(p.DomainComponents) > 0 {
		ok := false
		for _, dc := range p.DomainComponents {
			ok = ok || HasIA5Attribute(c.RawSubject, OIDDomainComponent, dc)
		}
		if !ok {
			return fail(RuleSubject, "subject has no DC=%s (IA5String)", strings.Join(p.DomainComponents, " or DC="))
		}
	}
	if missing := p.KeyUsage &^ c.KeyUsage; missing != 0 {
		return fail(RuleKeyUsage, "key usage must include %s", keyUsageNames(p.KeyUsage))
	}
	if bad := c.KeyUsage & p.ForbiddenKeyUsage; bad != 0 {
		return fail(RuleKeyUsage, "key usage must not include %s", keyUsageNames(bad))
	}
	if alg := KeyAlgorithmOf(c); !slices.Contains(p.Keys, alg) {
		return fail(RuleKey, "key is %s, %s requires %s", alg, p.Source, joinKeys(p.Keys))
	}
	if sig := SignatureName(c); len(p.Signatures) > 0 && !slices.Contains(p.Signatures, sig) {
		return fail(RuleSignature, "signed with %s, %s requires %s", sig, p.Source, strings.Join(p.Signatures, " or "))
	}
	return nil
}

func joinKeys(ks []KeyAlgorithm) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, " or ")
}

// keyUsageNames spells key usage bits the way RFC 5280 and OpenSSL's config do.
func keyUsageNames(ku x509.KeyUsage) string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "nonRepudiation"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"}, {x509.KeyUsageEncipherOnly, "encipherOnly"}, {x509.KeyUsageDecipherOnly, "decipherOnly"},
	}
	var out []string
	for _, n := range names {
		if ku&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ", ")
}

// OIDDomainComponent is domainComponent (RFC 4519), the DC of ISO 15118 subjects.
var OIDDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}

// nameRDN is one RDN with the raw values kept (encoding/asn1 treats a slice type whose name
// ends in SET as an ASN.1 SET OF); pkix.Name would lose the string type a profile checks.
type nameRDNSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// HasIA5Attribute reports whether the DER name rawName has an attribute oid whose value is the
// IA5String want.
func HasIA5Attribute(rawName []byte, oid asn1.ObjectIdentifier, want string) bool {
	var name []nameRDNSET
	if rest, err := asn1.Unmarshal(rawName, &name); err != nil || len(rest) > 0 {
		return false
	}
	for _, rdn := range name {
		for _, a := range rdn {
			if a.Type.Equal(oid) && a.Value.Tag == asn1.TagIA5String && bytes.Equal(a.Value.Bytes, []byte(want)) {
				return true
			}
		}
	}
	return false
}
