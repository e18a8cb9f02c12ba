package testpki

import (
	"crypto/x509"
	"fmt"
	"net"
	"time"
)

// DefaultOCSPURL is the OCSP responder the standard PKI's certificates point at: loopback, so that
// a test can answer on it without reaching the network.
const DefaultOCSPURL = "http://127.0.0.1:8888/"

// Subject values of the standard PKI.
const (
	// Organization is the O of every certificate of the standard PKI.
	Organization = "EVerest test"
	// Country is the C of every certificate of the standard PKI.
	Country = "DE"
	// EMAID is the contract certificate's common name: an eMAID without separators
	// (country DE, provider PNX, type C, instance 12345678), as ISO 15118-2 puts it in the CN.
	EMAID = "DEPNXC12345678"
	// ChargePointID is the CSMS leaf's common name, the charging station's identity in OCPP.
	ChargePointID = "CP001"
)

// Options tunes Generate. The zero value gives the standard PKI valid from an hour ago.
type Options struct {
	// Now is the time validity periods start from; zero means time.Now().
	Now time.Time
	// Password encrypts the key files WriteLayout writes when its own password argument is empty;
	// empty means unencrypted PKCS#8.
	Password string
	// OCSPURL is the OCSP AIA URL of the sub-CAs and leaves of the V2G and MO domains; empty means
	// DefaultOCSPURL.
	OCSPURL string
	// CSMSKeyAlgorithm is the key algorithm of the CSMS domain (root, leaf, server); empty means
	// KeyP256. OCPP deployments often use KeyRSA2048.
	CSMSKeyAlgorithm string
	// ISO15118_20 adds an ISO 15118-20 chain beside the -2 one: its own V2G root, two CPO
	// sub-CAs and a SECC leaf, all P-521 (see PKI.V2G20Root).
	ISO15118_20 bool
	// SeccIDs adds one SECC leaf per EVSE: CN the EVSE's ISO15118SeccId, issued by CPO Sub-CA 2
	// (and a -20 one by CPO-20 Sub-CA 2 with ISO15118_20). An ID is letters, digits, '-', '_'
	// or '.', so it can name files.
	SeccIDs []string
}

// PKI is the standard test PKI of an EV charger: the four trust domains with the chains a
// station meets in each. Every key is P-256 unless Options.CSMSKeyAlgorithm says otherwise.
type PKI struct {
	// V2G domain: V2G root → CPO Sub-CA 1 (pathlen 1) → CPO Sub-CA 2 (pathlen 0) → SECC leaf
	// (CN SECCCert, DC CPO), the station's ISO 15118 TLS server certificate.
	V2GRoot, CPOSubCA1, CPOSubCA2, SECCLeaf *Issued
	// MO domain: MO root → MO Sub-CA 1 (pathlen 1) → MO Sub-CA 2 (pathlen 0) → contract
	// certificate (CN EMAID, no DC).
	MORoot, MOSubCA1, MOSubCA2, Contract *Issued
	// CSMS domain: CSMS root → CSMS leaf (the station's OCPP security profile 3 client
	// certificate, CN ChargePointID, EKU clientAuth) and CSMS server (CN localhost, SAN DNS
	// localhost and IP 127.0.0.1, EKU serverAuth).
	CSMSRoot, CSMSLeaf, CSMSServer *Issued
	// MF domain: MF root → firmware signing certificate (EKU codeSigning, KU DigitalSignature).
	MFRoot, FirmwareSigner *Issued

	// ISO 15118-20 (Options.ISO15118_20, else nil): V2G-20 root → CPO-20 Sub-CA 1 → CPO-20
	// Sub-CA 2 → SECC-20 leaf (CN SECC20Cert, DC CSO, key usage digitalSignature), every key
	// P-521 and every signature ecdsa-with-SHA512 (ISO 15118-20 Annex B).
	V2G20Root, CPO20SubCA1, CPO20SubCA2, SECC20Leaf *Issued
	// EVSEs are the per-EVSE SECC leaves of Options.SeccIDs, in that order.
	EVSEs []EVSELeaves

	// Password is Options.Password, the default key file password of WriteLayout.
	Password string
}

// Generate makes the standard PKI. Roots and sub-CAs are valid for CAValidityYears, leaves for
// LeafValidityYears, all from an hour before opts.Now.
func Generate(opts Options) (*PKI, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	ocsp := opts.OCSPURL
	if ocsp == "" {
		ocsp = DefaultOCSPURL
	}
	notBefore := now.Add(-backdate)
	caNotAfter := now.AddDate(CAValidityYears, 0, 0)
	leafNotAfter := now.AddDate(LeafValidityYears, 0, 0)

	// Each spec starts from the profile of its kind, so the list below only says what
	// differs between certificates.
	root := func(cn, dc, alg string) Spec {
		return Spec{CommonName: cn, Organization: Organization, Country: Country, DomainComponent: dc,
			IsCA: true, MaxPathLen: -1, NotBefore: notBefore, NotAfter: caNotAfter, KeyAlgorithm: alg}
	}
	subCA := func(cn, dc string, pathLen int) Spec {
		return Spec{CommonName: cn, Organization: Organization, Country: Country, DomainComponent: dc,
			IsCA: true, MaxPathLen: pathLen, NotBefore: notBefore, NotAfter: caNotAfter,
			OCSPURLs: []string{ocsp}}
	}
	leaf := func(cn, dc, alg string) Spec {
		return Spec{CommonName: cn, Organization: Organization, Country: Country, DomainComponent: dc,
			NotBefore: notBefore, NotAfter: leafNotAfter, KeyAlgorithm: alg}
	}

	p := &PKI{Password: opts.Password}
	var g generator

	seccSpec := leaf("SECCCert", "CPO", KeyP256)
	seccSpec.OCSPURLs = []string{ocsp}
	p.V2GRoot = g.selfSigned("V2G root", root("V2GRootCA", "V2G", KeyP256))
	p.CPOSubCA1 = g.issue("CPO Sub-CA 1", p.V2GRoot, subCA("CPOSubCA1", "V2G", 1))
	p.CPOSubCA2 = g.issue("CPO Sub-CA 2", p.CPOSubCA1, subCA("CPOSubCA2", "V2G", 0))
	p.SECCLeaf = g.issue("SECC leaf", p.CPOSubCA2, seccSpec)

	contractSpec := leaf(EMAID, "", KeyP256)
	contractSpec.OCSPURLs = []string{ocsp}
	p.MORoot = g.selfSigned("MO root", root("MORootCA", "MO", KeyP256))
	p.MOSubCA1 = g.issue("MO Sub-CA 1", p.MORoot, subCA("MOSubCA1", "MO", 1))
	p.MOSubCA2 = g.issue("MO Sub-CA 2", p.MOSubCA1, subCA("MOSubCA2", "MO", 0))
	p.Contract = g.issue("contract certificate", p.MOSubCA2, contractSpec)

	csmsLeafSpec := leaf(ChargePointID, "", opts.CSMSKeyAlgorithm)
	csmsLeafSpec.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	csmsServerSpec := leaf("localhost", "", opts.CSMSKeyAlgorithm)
	csmsServerSpec.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	csmsServerSpec.DNSNames = []string{"localhost"}
	csmsServerSpec.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	p.CSMSRoot = g.selfSigned("CSMS root", root("CSMSRootCA", "", opts.CSMSKeyAlgorithm))
	p.CSMSLeaf = g.issue("CSMS leaf", p.CSMSRoot, csmsLeafSpec)
	p.CSMSServer = g.issue("CSMS server", p.CSMSRoot, csmsServerSpec)

	signerSpec := leaf("FirmwareSigner", "", KeyP256)
	signerSpec.KeyUsage = x509.KeyUsageDigitalSignature
	signerSpec.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	p.MFRoot = g.selfSigned("MF root", root("MFRootCA", "", KeyP256))
	p.FirmwareSigner = g.issue("firmware signer", p.MFRoot, signerSpec)

	if opts.ISO15118_20 {
		g.iso15118_20(p, notBefore, caNotAfter, leafNotAfter, ocsp)
	}
	g.evses(p, opts.SeccIDs, notBefore, leafNotAfter, ocsp)

	if g.err != nil {
		return nil, g.err
	}
	return p, nil
}

// generator makes certificates one after the other and keeps the first error, after which it
// makes nothing more; Generate then reads as the list of certificates it makes.
type generator struct {
	err error
}

func (g *generator) selfSigned(name string, spec Spec) *Issued {
	if g.err != nil {
		return nil
	}
	c, err := SelfSigned(spec)
	if err != nil {
		g.err = fmt.Errorf("testpki: generating %s: %w", name, err)
	}
	return c
}

func (g *generator) issue(name string, ca *Issued, spec Spec) *Issued {
	if g.err != nil {
		return nil
	}
	c, err := ca.Issue(spec)
	if err != nil {
		g.err = fmt.Errorf("testpki: generating %s: %w", name, err)
	}
	return c
}
