package tlsconf_test

import (
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
	"github.com/evsesec/evsesec/tlsconf"
)

// A charger with two EVSEs, each with an ISO 15118-2 and an ISO 15118-20 SECC leaf whose CN is
// its SECC-ID: one SECC server config per EVSE. A TLS 1.2 car gets the EVSE's -2 leaf, a TLS 1.3
// car its -20 leaf.
func ExampleSECCServerConfig_perEVSE() {
	p, err := testpki.Generate(testpki.Options{ISO15118_20: true, SeccIDs: []string{"DEABCS1EVSE1", "DEABCS1EVSE2"}})
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "certs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := p.WriteLayout(dir, ""); err != nil {
		log.Fatal(err)
	}
	ev := &tlsconf.Events{}
	st, err := store.Open(store.DefaultConfig(dir), store.Options{OnEvent: ev.Publish})
	if err != nil {
		log.Fatal(err)
	}
	for _, evse := range []string{"DEABCS1EVSE1", "DEABCS1EVSE2"} {
		cfg, err := tlsconf.SECCServerConfig(st, tlsconf.SECCOptions{Events: ev, SeccID: evse, TLS13: tlsconf.TLS13OnlyV2G20})
		if err != nil {
			log.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				tc := tls.Server(c, cfg)
				_ = tc.Handshake()
				tc.Close()
			}
		}()
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			// The example car skips verification to stay short; see ExampleSECCServerConfig.
			conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: version, MaxVersion: version})
			if err != nil {
				log.Fatal(err)
			}
			leaf := conn.ConnectionState().PeerCertificates[0]
			fmt.Printf("%s %s: CN %s, %s\n", evse, tls.VersionName(version), leaf.Subject.CommonName, leaf.SignatureAlgorithm)
			conn.Close()
		}
		ln.Close()
	}
	// Output:
	// DEABCS1EVSE1 TLS 1.2: CN DEABCS1EVSE1, ECDSA-SHA256
	// DEABCS1EVSE1 TLS 1.3: CN DEABCS1EVSE1, ECDSA-SHA512
	// DEABCS1EVSE2 TLS 1.2: CN DEABCS1EVSE2, ECDSA-SHA256
	// DEABCS1EVSE2 TLS 1.3: CN DEABCS1EVSE2, ECDSA-SHA512
}
