package keys

import (
	"strings"
	"testing"
)

func TestPKCS11URI(t *testing.T) {
	uri := "pkcs11:token=evsesec;object=SECC_LEAF;type=private"
	for _, c := range []struct {
		name, file, want string
		ok               bool
	}{
		{"the URI alone", uri + "\n", uri, true},
		{"without a newline", uri, uri, true},
		{"after comments and blank lines", "# made by evsesec\n\n   \n# key of the SECC leaf\n" + uri + "\n", uri, true},
		{"CRLF and indentation", "# comment\r\n  " + uri + "  \r\n", uri, true},
		{"the scheme in capitals", "PKCS11:token=a;object=b\n", "PKCS11:token=a;object=b", true},
		{"a PEM key", "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n", "", false},
		{"a URI after another line", "not a uri\n" + uri + "\n", "", false},
		{"only comments", "# nothing\n#\n", "", false},
		{"empty", "", "", false},
		{"a line too long to be a URI", "pkcs11:" + strings.Repeat("a", maxURILine) + "\n", "", false},
		{"the scheme cut short", "pkcs1\n", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok := PKCS11URI([]byte(c.file))
			if got != c.want || ok != c.ok {
				t.Errorf("PKCS11URI = %q, %v; want %q, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

func BenchmarkPKCS11URIOfAPEMKey(b *testing.B) {
	key := []byte("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n")
	b.ReportAllocs()
	for range b.N {
		PKCS11URI(key)
	}
}
