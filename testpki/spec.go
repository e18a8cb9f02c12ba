package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// Default validity periods, counted from NotBefore (or from now when NotBefore is zero).
const (
	CAValidityYears   = 10
	LeafValidityYears = 2
)

// backdate is how far before now a zero NotBefore lies, so that a certificate made now is valid
// on a peer whose clock is a little behind.
const backdate = time.Hour

// Spec describes one certificate to make. The zero value of every field has a useful default, noted
// on the field, except MaxPathLen: for a CA, 0 means "pathlen 0" (the CA may sign only leaves);
// use -1 for no limit.
type Spec struct {
	// Subject attributes, encoded in the order C, O, CN, DC; empty ones are left out. C is a
	// PrintableString of two letters, O and CN UTF8Strings, DC an IA5String (ISO 15118-2 wants
	// DC=CPO on the SECC leaf).
	CommonName, Organization, Country, DomainComponent string

	// IsCA makes a CA certificate; otherwise basic constraints say CA:FALSE.
	IsCA bool
	// MaxPathLen is the CA's path length constraint: -1 no limit, 0 pathlen 0, n pathlen n. A leaf
	// must leave it 0 or -1.
	MaxPathLen int

	// NotBefore zero: now minus one hour. NotAfter zero: NotBefore (or now, when NotBefore is zero)
	// plus CAValidityYears for a CA and LeafValidityYears for a leaf. Set both to make expired or
	// not yet valid certificates.
	NotBefore, NotAfter time.Time

	// OCSPURLs and IssuerURLs fill the Authority Information Access extension (id-ad-ocsp and
	// id-ad-caIssuers).
	OCSPURLs   []string
	IssuerURLs []string

	// DNSNames and IPAddresses fill the subject alternative name.
	DNSNames    []string
	IPAddresses []net.IP

	// KeyUsage zero: CertSign|CRLSign for a CA, DigitalSignature|KeyAgreement for a leaf (the
	// ISO 15118-2 leaf profile).
	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage

	// Serial nil: a random positive number of at most 64 bits.
	Serial *big.Int

	// KeyAlgorithm is the algorithm of a generated key (KeyP256 when empty). With Key set it must be
	// empty or match Key.
	KeyAlgorithm string
	// Key reuses an existing key, for cross-signing or re-issuing; nil generates one.
	Key crypto.Signer
}

// Issued is a certificate made by this package with its private key and the certificate that
// issued it.
type Issued struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Issuer is the issuing certificate; nil for a self-signed certificate.
	Issuer *Issued
}

// SelfSigned makes a self-signed certificate (normally a root CA) from spec.
func SelfSigned(spec Spec) (*Issued, error) {
	return create(spec, nil)
}

// Issue makes a certificate from spec signed by ca's key, with ca's subject as issuer and ca's
// subject key identifier as authority key identifier. ca must be a CA certificate.
func (ca *Issued) Issue(spec Spec) (*Issued, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("testpki: issuer has no certificate or key")
	}
	if !ca.Cert.IsCA {
		return nil, fmt.Errorf("testpki: %q is not a CA", ca.Cert.Subject.CommonName)
	}
	return create(spec, ca)
}

// create makes the certificate; parent nil means self-signed.
func create(spec Spec, parent *Issued) (*Issued, error) {
	key := spec.Key
	if key == nil {
		var err error
		if key, err = GenerateKey(spec.KeyAlgorithm); err != nil {
			return nil, err
		}
	} else if spec.KeyAlgorithm != "" {
		if got := KeyAlgorithmOf(key.Public()); got != spec.KeyAlgorithm {
			return nil, fmt.Errorf("testpki: key algorithm %q requested but the given key is %q", spec.KeyAlgorithm, got)
		}
	}

	subject, err := encodeSubject(spec)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	serial := spec.Serial
	if serial == nil {
		if serial, err = randomSerial(); err != nil {
			return nil, err
		}
	} else if serial.Sign() <= 0 {
		return nil, fmt.Errorf("testpki: serial %v is not positive", serial)
	}
	notBefore, notAfter := validity(spec, time.Now())
	if !notAfter.After(notBefore) {
		return nil, fmt.Errorf("testpki: NotAfter %v is not after NotBefore %v", notAfter, notBefore)
	}

	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true, // Go always marks it critical, as ISO 15118-2 wants
		IsCA:                  spec.IsCA,
		SubjectKeyId:          skid,
		OCSPServer:            spec.OCSPURLs,
		IssuingCertificateURL: spec.IssuerURLs,
		DNSNames:              spec.DNSNames,
		IPAddresses:           spec.IPAddresses,
		KeyUsage:              spec.KeyUsage,
		ExtKeyUsage:           spec.ExtKeyUsage,
	}
	switch {
	case spec.IsCA && spec.MaxPathLen < 0:
		tmpl.MaxPathLen = -1
	case spec.IsCA:
		tmpl.MaxPathLen = spec.MaxPathLen
		tmpl.MaxPathLenZero = spec.MaxPathLen == 0
	case spec.MaxPathLen > 0:
		return nil, errors.New("testpki: MaxPathLen is only for CA certificates")
	}
	if tmpl.KeyUsage == 0 {
		if spec.IsCA {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
		}
	}

	parentCert, signer := tmpl, key
	if parent != nil {
		parentCert, signer = parent.Cert, parent.Key
		// Set explicitly: Go copies the parent's key id only when issuer and subject names differ,
		// and a re-issued root under the same name still needs it to find its issuer.
		tmpl.AuthorityKeyId = parent.Cert.SubjectKeyId
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("testpki: creating certificate %q: %w", spec.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testpki: parsing the certificate just made: %w", err)
	}
	return &Issued{Cert: cert, Key: key, Issuer: parent}, nil
}

// validity applies the defaults of Spec.NotBefore and Spec.NotAfter.
func validity(spec Spec, now time.Time) (notBefore, notAfter time.Time) {
	notBefore, notAfter = spec.NotBefore, spec.NotAfter
	start := notBefore
	if notBefore.IsZero() {
		notBefore = now.Add(-backdate)
		start = now
	}
	if notAfter.IsZero() {
		years := LeafValidityYears
		if spec.IsCA {
			years = CAValidityYears
		}
		notAfter = start.AddDate(years, 0, 0)
	}
	return notBefore, notAfter
}

// randomSerial returns a random serial in [1, 2^63], so it is positive and at most 64 bits long
// as a number (DER may add a sign octet).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 63)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("testpki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// subjectKeyID is the SHA-1 of the subjectPublicKey bit string (RFC 5280 4.2.1.2, method 1), the
// value OpenSSL computes. Go would compute a different one for CAs and none for leaves.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("testpki: encoding public key: %w", err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("testpki: decoding public key: %w", err)
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}
