// Package tlsconf builds the tls.Config of the station's two TLS stacks from the store, so that
// they always use its current certificates without a restart:
//
//   - OCPPClientConfig: the OCPP client of security profiles 2 and 3. The CSMS server is verified
//     against the CSMS domain (optionally also the system's roots) at every handshake; with
//     profile 3 the client certificate, the newest valid CSMS leaf and its key, is chosen at every
//     handshake, so an update_leaf_certificate takes effect on the next connection.
//   - SECCServerConfig: the ISO 15118 SECC server. It serves the newest valid SECC leaf per V2G
//     root with its sub-CAs and the cached OCSP response stapled: a V2G (ISO 15118-2) leaf over
//     TLS 1.2 with the ISO 15118-2 cipher suites, a V2G20 (ISO 15118-20) leaf over TLS 1.3,
//     chosen by the version the handshake negotiates, and with SECCOptions.SeccID the leaf of one
//     EVSE. A car that names the roots it trusts
//     in its ClientHello (trusted_ca_keys, certificate_authorities) gets a chain under one of
//     them when the connection comes through NewHelloListener or NewHelloConn.
//
// How the configs stay current: the certificates and keys they build are cached and rebuilt when
// the store reports a change of the leaf type or trust domain concerned (through Events, passed
// to store.Open as Options.OnEvent; an OCSP cache update or the garbage collection of a stale
// response is such a change), when the cache is older than MaxAge (changes made by another
// process raise no event in this process), and whenever a cached
// certificate is outside its validity period at the handshake's time — an expired leaf is never
// served, whatever the cache holds. Keys come through a KeyLoader, a func from the key file's
// bytes to a crypto.Signer, so a TPM or PKCS#11 backend plugs in without changing this package.
//
// The configs read the files the store names through the operating system, so they need a
// store opened on the real filesystem (store.Options.FS nil or store.OSFS).
//
// tlsconf imports store, certs and keys; it must not import api or any transport.
package tlsconf
