package pkcs11

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/keys"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want URI
		out  string // String(); "" means same as in
	}{
		{"pkcs11:token=evsesec;object=secc;id=%01%02;type=private", URI{Token: "evsesec", Object: "secc", ID: []byte{1, 2}, Type: "private"}, ""},
		{"PKCS11:object=my%20key", URI{Object: "my key"}, "pkcs11:object=my%20key"},
		// RFC 7512 §3 example, with attribute order and query normalised.
		{"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
			URI{Token: "The Software PKCS#11 Softtoken", Object: "my-certificate", Type: "cert",
				ID: []byte{0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91}, Extra: map[string]string{"manufacturer": "Snake Oil, Inc.", "model": "1.0"}},
			"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;object=my-certificate;id=%69%95%3E%5C%F4%BD%EC%91;type=cert;manufacturer=Snake%20Oil,%20Inc.;model=1.0"},
		{"pkcs11:object=k?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so", URI{Object: "k"}, "pkcs11:object=k"},
		{"pkcs11:", URI{}, ""},
		{"  pkcs11:id=%aa%BB  ", URI{ID: []byte{0xaa, 0xbb}}, "pkcs11:id=%AA%BB"},
		{"pkcs11:x-vendor=1;object=a", URI{Object: "a", Extra: map[string]string{"x-vendor": "1"}}, "pkcs11:object=a;x-vendor=1"},
	} {
		got, err := ParseURI(tc.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tc.in, err)
			continue
		}
		if !got.Equal(tc.want) || !bytes.Equal(got.ID, tc.want.ID) {
			t.Errorf("ParseURI(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
		want := tc.out
		if want == "" {
			want = strings.TrimSpace(tc.in)
		}
		if s := got.String(); s != want {
			t.Errorf("String() = %q, want %q", s, want)
		}
		again, err := ParseURI(got.String())
		if err != nil || !again.Equal(got) {
			t.Errorf("round trip of %q: %v", got.String(), err)
		}
	}
	for _, in := range []string{
		"", "pkcs:object=a", "object=a", "pkcs11:object", "pkcs11:=a", "pkcs11:object=a;object=b",
		"pkcs11:bogus=1", "pkcs11:type=key", "pkcs11:id=%zz", "pkcs11:id=%1", "pkcs11:object=a?bogus=1",
		"pkcs11:object=a?pin-value=%", "pkcs11:object=a?pin-value",
	} {
		if _, err := ParseURI(in); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("ParseURI(%q) = %v, want ErrMalformed", in, err)
		}
	}
	// A PIN in the query never appears in an error.
	_, err := ParseURI("pkcs11:object=a?pin-value=s3cr3t%zz")
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %v leaks the PIN", err)
	}
}

func TestKeyFile(t *testing.T) {
	u := URI{Token: "evsesec", Object: "evsesec-00ff", ID: []byte{0, 0xff}, Type: "private"}
	kf := u.KeyFile()
	if string(kf) != "pkcs11:token=evsesec;object=evsesec-00ff;id=%00%FF;type=private\n" {
		t.Fatalf("KeyFile = %q", kf)
	}
	if k := keys.KindOf(kf); k != keys.KindPKCS11 {
		t.Fatalf("KindOf = %q", k)
	}
	annotated := append([]byte("# SECC key, in the secure element\n\n"), kf...)
	for _, data := range [][]byte{kf, annotated} {
		got, err := ParseKeyFile(data)
		if err != nil || !got.Equal(u) {
			t.Fatalf("ParseKeyFile(%q) = %v, %v", data, got, err)
		}
	}
	for _, data := range [][]byte{nil, []byte("-----BEGIN PRIVATE KEY-----\n"), []byte("# only a comment\n")} {
		if _, err := ParseKeyFile(data); !errors.Is(err, keys.ErrNoKey) {
			t.Errorf("ParseKeyFile(%q) = %v, want ErrNoKey", data, err)
		}
	}
}

func TestOpenConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {ModulePath: "/x.so"}, {TokenLabel: "t"}} {
		if _, err := Open(cfg); err == nil || errors.Is(err, ErrNotBuilt) {
			t.Errorf("Open(%+v) = %v, want a config error", cfg, err)
		}
	}
	if !Built {
		_, err := Open(Config{ModulePath: "/x.so", TokenLabel: "t", PIN: "1"})
		if !errors.Is(err, ErrNotBuilt) || !errors.Is(err, keys.ErrUnsupported) {
			t.Fatalf("Open without the pkcs11 tag = %v, want ErrNotBuilt", err)
		}
	}
	if s := (Config{ModulePath: "/m.so", TokenLabel: "t", PIN: "secret"}).String(); strings.Contains(s, "secret") {
		t.Fatalf("Config.String leaks the PIN: %s", s)
	}
}

func FuzzParseURI(f *testing.F) {
	f.Add("pkcs11:token=evsesec;object=secc;id=%01%02;type=private")
	f.Add("pkcs11:object=a?pin-value=1&module-path=/x")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		again, err := ParseURI(u.String())
		if err != nil || !again.Equal(u) {
			t.Fatalf("round trip of %q via %q: %v", s, u.String(), err)
		}
	})
}
