package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"
)

func TestGenerateProfiles(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p, err := Generate(Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ca := x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	iso := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement
	const noCA = -2 // marks a leaf in the maxPathLen column
	tests := []struct {
		name       string
		got        *Issued
		issuer     *Issued
		cn, dc     string
		maxPathLen int
		ocsp       bool
		ku         x509.KeyUsage
		eku        []x509.ExtKeyUsage
	}{
		{"V2G root", p.V2GRoot, nil, "V2GRootCA", "V2G", -1, false, ca, nil},
		{"CPO Sub-CA 1", p.CPOSubCA1, p.V2GRoot, "CPOSubCA1", "V2G", 1, true, ca, nil},
		{"CPO Sub-CA 2", p.CPOSubCA2, p.CPOSubCA1, "CPOSubCA2", "V2G", 0, true, ca, nil},
		{"SECC leaf", p.SECCLeaf, p.CPOSubCA2, "SECCCert", "CPO", noCA, true, iso, nil},
		{"MO root", p.MORoot, nil, "MORootCA", "MO", -1, false, ca, nil},
		{"MO Sub-CA 1", p.MOSubCA1, p.MORoot, "MOSubCA1", "MO", 1, true, ca, nil},
		{"MO Sub-CA 2", p.MOSubCA2, p.MOSubCA1, "MOSubCA2", "MO", 0, true, ca, nil},
		{"contract", p.Contract, p.MOSubCA2, EMAID, "", noCA, true, iso, nil},
		{"CSMS root", p.CSMSRoot, nil, "CSMSRootCA", "", -1, false, ca, nil},
		{"CSMS leaf", p.CSMSLeaf, p.CSMSRoot, ChargePointID, "", noCA, false, iso, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{"CSMS server", p.CSMSServer, p.CSMSRoot, "localhost", "", noCA, false, iso, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{"MF root", p.MFRoot, nil, "MFRootCA", "", -1, false, ca, nil},
		{"firmware signer", p.FirmwareSigner, p.MFRoot, "FirmwareSigner", "", noCA, false, x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.got.Cert
			if c.Subject.CommonName != tt.cn || !slices.Equal(c.Subject.Organization, []string{Organization}) ||
				!slices.Equal(c.Subject.Country, []string{Country}) {
				t.Errorf("subject %q", c.Subject)
			}
			if got := domainComponent(c); got != tt.dc {
				t.Errorf("DC %q, want %q", got, tt.dc)
			}
			if tt.got.Issuer != tt.issuer {
				t.Error("wrong issuer link")
			}
			isCA := tt.maxPathLen != noCA
			if c.IsCA != isCA || (isCA && c.MaxPathLen != tt.maxPathLen) || (tt.maxPathLen == 0 && !c.MaxPathLenZero) {
				t.Errorf("IsCA %v MaxPathLen %d zero %v, want CA %v pathlen %d", c.IsCA, c.MaxPathLen, c.MaxPathLenZero, isCA, tt.maxPathLen)
			}
			var wantOCSP []string
			if tt.ocsp {
				wantOCSP = []string{DefaultOCSPURL}
			}
			if !slices.Equal(c.OCSPServer, wantOCSP) {
				t.Errorf("OCSP %v, want %v", c.OCSPServer, wantOCSP)
			}
			if c.KeyUsage != tt.ku || !slices.Equal(c.ExtKeyUsage, tt.eku) {
				t.Errorf("KU %b EKU %v, want %b %v", c.KeyUsage, c.ExtKeyUsage, tt.ku, tt.eku)
			}
			if KeyAlgorithmOf(c.PublicKey) != KeyP256 {
				t.Errorf("key %s, want P-256", KeyAlgorithmOf(c.PublicKey))
			}
			years := LeafValidityYears
			if isCA {
				years = CAValidityYears
			}
			if !c.NotBefore.Equal(now.Add(-time.Hour)) || !c.NotAfter.Equal(now.AddDate(years, 0, 0)) {
				t.Errorf("validity %v – %v", c.NotBefore, c.NotAfter)
			}
		})
	}

	// Every leaf verifies up to its domain's root in crypto/x509 at the generation time.
	for _, leaf := range []*Issued{p.SECCLeaf, p.Contract, p.CSMSLeaf, p.CSMSServer, p.FirmwareSigner} {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(leaf.Root().Cert)
		for _, c := range leaf.Chain()[1:] {
			inter.AddCert(c)
		}
		if _, err := leaf.Cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", leaf.Cert.Subject.CommonName, err)
		}
	}
	if err := p.CSMSServer.Cert.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("CSMS server IP SAN: %v", err)
	}
}

// domainComponent returns the certificate's DC attribute, which pkix.Name has no field for.
func domainComponent(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidDomainComponent) {
			s, _ := n.Value.(string)
			return s
		}
	}
	return ""
}

func TestGenerateOptions(t *testing.T) {
	p, err := Generate(Options{OCSPURL: "http://127.0.0.1:19999/ocsp", CSMSKeyAlgorithm: KeyP384, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Issued{p.CPOSubCA1, p.CPOSubCA2, p.SECCLeaf, p.MOSubCA1, p.MOSubCA2, p.Contract} {
		if !slices.Equal(c.Cert.OCSPServer, []string{"http://127.0.0.1:19999/ocsp"}) {
			t.Errorf("%s: OCSP %v", c.Cert.Subject.CommonName, c.Cert.OCSPServer)
		}
	}
	for _, c := range []*Issued{p.CSMSRoot, p.CSMSLeaf, p.CSMSServer} {
		if got := KeyAlgorithmOf(c.Cert.PublicKey); got != KeyP384 {
			t.Errorf("%s: key %s, want P-384", c.Cert.Subject.CommonName, got)
		}
	}
	if p.Password != "pw" {
		t.Errorf("Password %q not kept", p.Password)
	}
	if !time.Now().Add(-time.Hour).Add(-time.Minute).Before(p.SECCLeaf.Cert.NotBefore) {
		t.Errorf("zero Now: NotBefore %v is not about an hour ago", p.SECCLeaf.Cert.NotBefore)
	}
	if _, err := Generate(Options{CSMSKeyAlgorithm: "RSA-512"}); err == nil {
		t.Error("Generate accepted an unknown key algorithm")
	}
}

// TestCSMSTLSHandshake proves the CSMS domain works for OCPP security profile 3: the server
// certificate serves TLS for localhost and the station's leaf authenticates as a client.
func TestCSMSTLSHandshake(t *testing.T) {
	p, err := Generate(Options{})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.CSMSRoot.Cert)
	serverConn, clientConn := net.Pipe()
	defer serverConn.Close()
	defer clientConn.Close()
	server := tls.Server(serverConn, &tls.Config{
		Certificates: []tls.Certificate{p.CSMSServer.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	})
	client := tls.Client(clientConn, &tls.Config{
		RootCAs:      pool,
		ServerName:   "localhost",
		Certificates: []tls.Certificate{p.CSMSLeaf.TLSCertificate()},
	})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if got := server.ConnectionState().PeerCertificates[0].Subject.CommonName; got != ChargePointID {
		t.Errorf("server saw client %q", got)
	}
}
