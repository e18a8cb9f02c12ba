package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// osslDate formats t for `openssl ca -startdate/-enddate`.
func osslDate(t time.Time) string { return t.UTC().Format("20060102150405Z") }

// TestCheckOrderAnchorThenDatesThenRest: every command that verifies answers "nothing in the
// requested domains to trust this with" first (verify_certificate IssuerNotFound,
// update_leaf_certificate NoRootCertificateInstalled), then a date problem (Expired), then the
// rest — the meaning of the codes and the reference's order (its empty trusted set is
// IssuerNotFound before the leaf's expiry is looked at). The table runs over the V2G anchor
// present or absent (absent: the root is installed, but in the MO domain) × a chain that is valid
// or has an expired or not yet valid certificate at each position, made with `openssl ca`.
func TestCheckOrderAnchorThenDatesThenRest(t *testing.T) {
	p := newOSSLPKI(t)
	now := time.Now()
	valid := osslOpts{CA: true, Start: osslDate(now.Add(-24 * time.Hour)), End: osslDate(now.Add(2 * 365 * 24 * time.Hour))}
	expired := osslOpts{CA: true, Start: osslDate(now.Add(-2 * 365 * 24 * time.Hour)), End: osslDate(now.Add(-365 * 24 * time.Hour))}
	future := osslOpts{CA: true, Start: osslDate(now.Add(365 * 24 * time.Hour)), End: osslDate(now.Add(3 * 365 * 24 * time.Hour))}
	leafOf := func(o osslOpts) osslOpts { o.CA = false; return o }

	type chain struct{ root, sub, leaf *osslCert }
	n := 0
	mk := func(rootO, subO, leafO osslOpts) chain {
		n++
		id := string(rune('a' + n))
		r := p.root("root"+id, "/CN=Check Order Root "+id, rootO)
		s := p.issue(r, "sub"+id, "/CN=Check Order Sub-CA "+id, subO)
		l := p.issue(s, "leaf"+id, "/DC=CPO/CN=SECC "+id, leafOf(leafO))
		return chain{r, s, l}
	}
	chains := []struct {
		name string
		c    chain
		// Verdicts with the anchor present.
		verify  ValidationResult
		install InstallResult
	}{
		{"valid", mk(valid, valid, valid), ValidationValid, InstallAccepted},
		{"leaf expired", mk(valid, valid, expired), ValidationExpired, InstallExpired},
		// A leaf that is not valid yet is Expired to verify_certificate; update_leaf_certificate
		// installs it ahead of its start.
		{"leaf not yet valid", mk(valid, valid, future), ValidationExpired, InstallAccepted},
		{"sub-CA expired", mk(valid, expired, valid), ValidationExpired, InstallExpired},
		{"sub-CA not yet valid", mk(valid, future, valid), ValidationExpired, InstallExpired},
		{"root expired", mk(expired, valid, valid), ValidationExpired, InstallExpired},
		{"root not yet valid", mk(future, valid, valid), ValidationExpired, InstallExpired},
	}
	for _, ch := range chains {
		for _, present := range []bool{true, false} {
			name := ch.name + ", anchor absent"
			if present {
				name = ch.name + ", anchor present"
			}
			t.Run(name, func(t *testing.T) {
				ts := newCAStore(t)
				bundle := "ca/mo/MO_ROOT_CA.pem"
				if present {
					bundle = "ca/v2g/V2G_ROOT_CA.pem"
				}
				// Written by hand: install_ca_certificate refuses an expired root.
				ts.write(t, bundle, []byte(ch.c.root.PEM))
				key, err := os.ReadFile(ch.c.leaf.KeyPath)
				if err != nil {
					t.Fatal(err)
				}
				keyPath := ts.write(t, "client/cso/SECC_LEAF.key", key)
				if err := os.Chmod(keyPath, 0o600); err != nil {
					t.Fatal(err)
				}
				chainPEM := pemOf(ch.c.leaf, ch.c.sub)

				wantVerify, wantInstall := ch.verify, ch.install
				if !present {
					wantVerify, wantInstall = ValidationIssuerNotFound, InstallNoRootCertificate
				}
				if got := ts.VerifyCertificate(chainPEM, []LeafType{LeafV2G}); got != wantVerify {
					t.Errorf("verify_certificate: %s, want %s", got, wantVerify)
				}
				before := snapshotTree(t, ts.root)
				got := ts.UpdateLeafCertificate(chainPEM, LeafV2G)
				if got != wantInstall {
					t.Errorf("update_leaf_certificate: %s, want %s", got, wantInstall)
				}
				if got != InstallAccepted {
					assertTreeUnchanged(t, ts.root, before)
				}
			})
		}
	}

	// After the dates, the rest: an expired sub-CA that also breaks a rule (CPO Sub-CA 1 with
	// pathlen 0 above another sub-CA) is Expired, not Unknown / InvalidFormat.
	t.Run("sub-CA expired and path length exceeded", func(t *testing.T) {
		pl0 := valid
		pl0.PathLen0 = true
		r := p.root("rootpl", "/CN=Check Order Root PL", valid)
		s1 := p.issue(r, "sub1pl", "/CN=Check Order Sub-CA 1 PL", pl0)
		s2 := p.issue(s1, "sub2pl", "/CN=Check Order Sub-CA 2 PL", expired)
		l := p.issue(s2, "leafpl", "/DC=CPO/CN=SECC PL", leafOf(valid))
		ts := newCAStore(t)
		ts.write(t, "ca/v2g/V2G_ROOT_CA.pem", []byte(r.PEM))
		key, err := os.ReadFile(l.KeyPath)
		if err != nil {
			t.Fatal(err)
		}
		ts.write(t, "client/cso/SECC_LEAF.key", key)
		chainPEM := pemOf(l, s2, s1)
		if got := ts.VerifyCertificate(chainPEM, []LeafType{LeafV2G}); got != ValidationExpired {
			t.Errorf("verify_certificate: %s, want Expired", got)
		}
		if got := ts.UpdateLeafCertificate(chainPEM, LeafV2G); got != InstallExpired {
			t.Errorf("update_leaf_certificate: %s, want Expired", got)
		}
	})

	// install_ca_certificate of a sub-CA: no issuer in any domain first, then its end date, then
	// its signature. A not yet valid sub-CA installs like a not yet valid root (rollover).
	t.Run("install_ca_certificate", func(t *testing.T) {
		r := p.root("rootca", "/CN=Check Order Root CA", valid)
		for _, tc := range []struct {
			name      string
			opts      osslOpts
			present   bool
			want      InstallResult
			wantFiles bool
		}{
			{"valid sub-CA, issuer present", valid, true, InstallAccepted, true},
			{"expired sub-CA, issuer present", expired, true, InstallExpired, false},
			{"future sub-CA, issuer present", future, true, InstallAccepted, true},
			{"valid sub-CA, no issuer anywhere", valid, false, InstallNoRootCertificate, false},
			{"expired sub-CA, no issuer anywhere", expired, false, InstallNoRootCertificate, false},
			{"future sub-CA, no issuer anywhere", future, false, InstallNoRootCertificate, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				n++
				sub := p.issue(r, "subca"+string(rune('a'+n)), "/CN=Check Order CA Sub "+string(rune('a'+n)), tc.opts)
				ts := newCAStore(t)
				if tc.present {
					ts.write(t, "ca/mo/MO_ROOT_CA.pem", []byte(r.PEM))
				}
				before := snapshotTree(t, ts.root)
				if got := ts.InstallCACertificate(sub.PEM, CAV2G); got != tc.want {
					t.Errorf("install_ca_certificate: %s, want %s", got, tc.want)
				}
				if _, err := os.Stat(filepath.Join(ts.root, "ca/v2g/V2G_ROOT_CA.pem")); (err == nil) != tc.wantFiles {
					t.Errorf("V2G bundle written: %v, want %v", err == nil, tc.wantFiles)
				}
				if !tc.wantFiles {
					assertTreeUnchanged(t, ts.root, before)
				}
			})
		}
	})
}
