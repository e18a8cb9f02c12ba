// Package testpki generates ISO 15118-2 and OCPP test PKIs: single certificates from a Spec
// (SelfSigned, Issued.Issue), the standard four-domain PKI of an EV charger (Generate) and the
// EVerest default certificate tree on disk (PKI.WriteLayout).
//
// The certificates are shaped like the ones real chargers meet, because the store's checks and
// OpenSSL-based consumers (EvseV2G, libocpp) are tested against them: subjects are encoded by hand
// so that C is a PrintableString and DC an IA5String, every certificate carries a subject key
// identifier, basic constraints are always present and critical, and key files come in the
// formats the reference library's fixtures use.
//
// testpki is used by tests, benchmarks, the demo and `evsesec pki init`; it is not meant to run a
// production CA. It imports only the standard library and must not import any other package of
// this module, so that every other package can use it in its tests.
package testpki
