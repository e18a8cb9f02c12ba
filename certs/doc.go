// Package certs parses X.509 certificates and computes everything the store needs to know about
// them without touching the filesystem: PEM bundles, OCPP CertificateHashData, OpenSSL's
// subject-name hash, the issuer links between certificates (by name, key identifiers and
// signature, never by time) and chain verification at a given time.
//
// certs imports only the standard library and golang.org/x/crypto; it must not import store, api
// or any transport.
package certs
