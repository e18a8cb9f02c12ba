// Package store is the certificate and key store of the charging station: the trust anchors of
// the V2G, CSMS, MO and MF domains, the station's leaf certificates and keys, and every operation
// of the EVerest evse_security interface on them.
//
// The store keeps the on-disk layout of an EVerest certificate tree (DESIGN.md §2.3): each
// domain's bundle is one PEM file or a directory of files, leaves and keys live in their
// directories. Every write is atomic (temporary file, fsync, rename, fsync of the directory) and
// happens under an inter-process lock, so a crash or a second process never leaves a half-written
// file. Files the store did not write are never rewritten or deleted, except to remove a
// certificate an operator asked to delete.
//
// Monitoring reads the store through Health (what a metrics scrape or `evsesec check` needs, under
// one shared lock) and the maintenance loop's expiry warnings; the metrics package builds on
// that, the store does not know it.
//
// store imports certs and keys; it knows nothing of JSON transports, MQTT or metrics.
package store
