package store

import (
	"crypto/x509"
	"encoding/asn1"
	"path/filepath"
	"strings"

	"github.com/evsesec/evsesec/certs"
)

// leafPrefix is the file name prefix of a leaf type's files (the reference's names, so an
// EVerest tree and ours look alike).
func leafPrefix(lt LeafType) string {
	if lt == LeafCSMS {
		return "CSMS_LEAF_"
	}
	return "SECC_LEAF_"
}

// chainFileName is the name of the chain file that goes with the leaf file stem.
func chainFileName(lt LeafType, id string) string {
	return "CPO_CERT_" + leafPrefix(lt) + "CHAIN_" + id + ".pem"
}

// newFileID returns a fresh identifier for a leaf's files: UTC time (so names sort by age) and
// random bits (so two in one second never collide).
func (s *Store) newFileID() string {
	return s.now().UTC().Format("20060102T150405Z") + "_" + randomSuffix(4)
}

// UpdateLeafCertificate installs a signed leaf (and its chain) of type lt: CSMS leaves must
// verify against the CSMS domain, V2G leaves against the V2G domain. A leaf that is not valid yet
// is accepted and used once it is (root rollover, renewal ahead of time).
//
// Results: WriteError for MF and MO (the station holds no such leaves) and when the leaf's key is
// not in the key directory or a file cannot be written; CertificateStoreMaxLengthExceeded when the
// store is over a limit; InvalidFormat when the input holds no certificate; the verification's
// result (Expired, InvalidSignature, NoRootCertificateInstalled, InvalidCertificateChain,
// InvalidFormat) when it does not verify; for SECC leaves InvalidFormat when the key makes it a
// leaf of the other SECC type (P-521 or Ed448: V2G20; else V2G) or is Ed448, which Go cannot use,
// and, with the profile check on, the profile's result (certs.ISO15118_2SECC for V2G,
// certs.ISO15118_20SECC for V2G20): InvalidCommonName when the subject lacks the DC,
// InvalidFormat for a wrong key, key usage or signature. The reason is logged. Accepted
// otherwise.
//
// The leaf file is named after its key's file (SECC_LEAF_<id>.pem next to SECC_LEAF_<id>.key), so
// the key is found without scanning; the chain file holds the verified chain in order (leaf,
// sub-CAs, without the self-signed root), whatever order the input had.
func (s *Store) UpdateLeafCertificate(chainPEM string, lt LeafType) InstallResult {
	if s.tooLarge("update_leaf_certificate", chainPEM) {
		return InstallInvalidFormat
	}
	if !stationLeaf(lt) {
		s.log.Warn("update_leaf_certificate rejected: the station holds no leaves of this type", "type", lt)
		return InstallWriteError
	}
	cs, err := certs.ParseCertificates([]byte(chainPEM))
	if err != nil || len(cs) == 0 {
		return s.refuseInput("update_leaf_certificate", InstallInvalidFormat, "no certificate in input", "type", lt, "err", err)
	}
	return write(s, "update_leaf_certificate", InstallWriteError, func() (InstallResult, []Event) {
		return s.updateLeaf(cs, lt)
	})
}

// updateLeaf is UpdateLeafCertificate under the write lock, for cs, the parsed input (leaf
// first).
func (s *Store) updateLeaf(cs []*x509.Certificate, lt LeafType) (InstallResult, []Event) {
	if full, why := s.isFull(); full {
		s.log.Warn("update_leaf_certificate rejected: store full", "type", lt, "why", why)
		return InstallStoreFull, nil
	}
	leaf := cs[0]
	v := s.readCAs()
	ls := s.readLeaves(lt)
	// The sub-CAs may come with the leaf or already be in the leaf directory (in the chain file of
	// the leaf being renewed): OCPP's CertificateSigned may carry the leaf alone, and in the
	// EVerest default layout the V2G bundle holds only the root. The directory's certificates
	// are untrusted path elements, exactly as the input's.
	inter := append([]*x509.Certificate{}, cs[1:]...)
	for _, f := range ls.files {
		if len(f.certs) > 1 {
			inter = append(inter, f.certs[1:]...)
		}
	}
	path, verr := certs.Verify(leaf, certs.VerifyOptions{
		Trusted:         v.domainPool(lt.Domain()),
		Intermediates:   inter,
		Time:            s.now(),
		AllowFutureLeaf: true,
	})
	if verr != nil {
		res := installResultOf(verr)
		s.log.Warn("update_leaf_certificate rejected", "type", lt, "result", res, "err", verr)
		return res, nil
	}
	if res, why := s.checkProfile(leaf, lt); res != InstallAccepted {
		s.log.Warn("update_leaf_certificate rejected: the leaf does not fit its type's certificate profile", "type", lt, "result", res, "why", why)
		return res, nil
	}
	kl := s.findKey(leaf, "", ls.keyDir)
	if kl.key == nil {
		s.log.Warn("update_leaf_certificate rejected: the leaf's private key is not in the key directory", "type", lt, "dir", ls.keyDir,
			"leaf", describe(leaf), "unreadable_keys", len(kl.unreadable))
		return InstallWriteError, nil
	}
	chain := path
	if last := chain[len(chain)-1]; len(chain) > 1 && certs.IsSelfSigned(last) {
		chain = chain[:len(chain)-1]
	}
	event := []Event{{Kind: EventInstall, Operation: OperationInstalled, LeafType: lt}}
	for _, e := range ls.entries {
		// Installed means both files a consumer is pointed at exist: the single file, and the
		// chain file when the leaf has sub-CAs. A leaf left with only one of them (a crash
		// between the two writes, or a file placed by hand) is written again in full.
		if e.fp == certs.FingerprintOf(leaf) && len(e.single) > 0 && (len(chain) == 1 || e.chainFile() != nil) {
			s.log.Info("update_leaf_certificate: leaf already installed", "type", lt, "leaf", describe(leaf))
			s.fulfilPending(kl.key.path)
			return InstallAccepted, event
		}
	}
	id := s.leafFileID(lt, ls, kl.key.path)
	single := filepath.Join(ls.certDir, leafPrefix(lt)+id+".pem")
	var chainPath string
	if len(chain) > 1 {
		chainPath = filepath.Join(ls.certDir, chainFileName(lt, id))
		if err := writeAtomic(s.fs, chainPath, certs.EncodePEM(chain...), 0o644, 0o755); err != nil {
			s.log.Error("update_leaf_certificate: write failed", "err", err)
			return InstallWriteError, nil
		}
	}
	if err := writeAtomic(s.fs, single, certs.EncodePEM(leaf), 0o644, 0o755); err != nil {
		s.log.Error("update_leaf_certificate: write failed", "err", err)
		if chainPath != "" {
			removeDurable(s.fs, chainPath)
		}
		return InstallWriteError, nil
	}
	s.fulfilPending(kl.key.path)
	event[0].Path = single
	s.log.Info("installed leaf certificate", "type", lt, "leaf", describe(leaf), "path", single, "key", kl.key.path, "chain", len(chain))
	s.updateLinksLocked()
	return InstallAccepted, event
}

// leafFileID picks the identifier of a new leaf's files: the one of its key file when the key
// was made by a CSR of ours and no leaf uses that name yet, a fresh one otherwise.
func (s *Store) leafFileID(lt LeafType, ls *leafSet, keyPath string) string {
	stem := strings.TrimSuffix(filepath.Base(keyPath), filepath.Ext(keyPath))
	if id, ok := strings.CutPrefix(stem, leafPrefix(lt)); ok && id != "" {
		if _, err := s.fs.Lstat(filepath.Join(ls.certDir, leafPrefix(lt)+id+".pem")); err != nil {
			if _, err := s.fs.Lstat(filepath.Join(ls.certDir, chainFileName(lt, id))); err != nil {
				return id
			}
		}
	}
	return s.newFileID()
}

var oidDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}

// attributeSET is one RDN with the raw values kept (encoding/asn1 treats a slice type whose name
// ends in SET as an ASN.1 SET OF); pkix.Name would lose the string type we must check.
type attributeSET []struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}
