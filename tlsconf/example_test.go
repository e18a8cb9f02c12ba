package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
	"github.com/evsesec/evsesec/tlsconf"
)

// exampleStore writes the test PKI to a temporary EVerest tree and opens a store on it whose
// events go to ev.
func exampleStore(ev *tlsconf.Events) (*store.Store, *testpki.PKI, func()) {
	p, err := testpki.Generate(testpki.Options{})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "certs")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.WriteLayout(dir, ""); err != nil {
		log.Fatal(err)
	}
	st, err := store.Open(store.DefaultConfig(dir), store.Options{OnEvent: ev.Publish})
	if err != nil {
		log.Fatal(err)
	}
	return st, p, func() { os.RemoveAll(dir) }
}

// An ISO 15118 SECC server on the store: a car connecting with TLS 1.2 and the ISO 15118-2
// cipher suite gets the SECC leaf with its sub-CAs.
func ExampleSECCServerConfig() {
	ev := &tlsconf.Events{}
	st, p, cleanup := exampleStore(ev)
	defer cleanup()

	cfg, err := tlsconf.SECCServerConfig(st, tlsconf.SECCOptions{Events: ev})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a real SECC listens on its IPv6 link-local address
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	go func() {
		// NewHelloListener lets the server see the V2G roots the car names in trusted_ca_keys.
		tln := tls.NewListener(tlsconf.NewHelloListener(ln), cfg)
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()

	// The car: trusts the V2G root, speaks ISO 15118-2.
	roots := x509.NewCertPool()
	roots.AddCert(p.V2GRoot.Cert)
	car := &tls.Config{RootCAs: roots, ServerName: "SECCCert", MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256},
		// The SECC leaf has no host name; a car verifies only the chain.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}}
	conn, err := tls.Dial("tcp", ln.Addr().String(), car)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	fmt.Println(tls.CipherSuiteName(cs.CipherSuite))
	for _, c := range cs.PeerCertificates {
		fmt.Println(c.Subject.CommonName)
	}
	// Output:
	// TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256
	// SECCCert
	// CPOSubCA2
	// CPOSubCA1
}

// An OCPP client of security profile 3: the CSMS sees the station's CSMS leaf as the client
// certificate.
func ExampleOCPPClientConfig() {
	ev := &tlsconf.Events{}
	st, p, cleanup := exampleStore(ev)
	defer cleanup()

	// The CSMS: its server certificate from the test PKI, client certificates required.
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(p.CSMSRoot.Cert)
	csms := &tls.Config{Certificates: []tls.Certificate{p.CSMSServer.TLSCertificate()},
		ClientCAs: clientCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", csms)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.(*tls.Conn).Handshake(); err != nil {
			seen <- err.Error()
			return
		}
		seen <- c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
	}()

	cfg, err := tlsconf.OCPPClientConfig(st, tlsconf.OCPPOptions{SecurityProfile: 3, ServerName: "localhost", Events: ev})
	if err != nil {
		log.Fatal(err)
	}
	conn, err := tls.Dial("tcp", ln.Addr().String(), cfg) // an OCPP stack dials wss://… with cfg
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println("CSMS saw client certificate", <-seen)

	_, err = tlsconf.OCPPClientConfig(st, tlsconf.OCPPOptions{SecurityProfile: 1})
	fmt.Println(err)
	// Output:
	// CSMS saw client certificate CP001
	// tlsconf: OCPP security profiles 0 and 1 do not use TLS (profile 1)
}
