package tpm

import (
	"testing"
)

func TestConfigEndpoint(t *testing.T) {
	for _, tc := range []struct {
		cfg      Config
		want     string // endpoint String
		wantTCTI string
	}{
		{Config{}, "/dev/tpmrm0", "device:/dev/tpmrm0"},
		{Config{Device: "/dev/tpm0"}, "/dev/tpm0", "device:/dev/tpm0"},
		{Config{Address: "tcp://127.0.0.1:2321"}, "tcp://127.0.0.1:2321", "swtpm:host=127.0.0.1,port=2321"},
		{Config{Address: "unix:///run/swtpm/sock"}, "unix:///run/swtpm/sock", "swtpm:path=/run/swtpm/sock"},
		{Config{Address: "swtpm:host=127.0.0.1,port=2400"}, "tcp://127.0.0.1:2400", "swtpm:host=127.0.0.1,port=2400"},
		{Config{Address: "swtpm:"}, "tcp://localhost:2321", "swtpm:host=localhost,port=2321"},
		{Config{Address: "swtpm:path=/tmp/s"}, "unix:///tmp/s", "swtpm:path=/tmp/s"},
		{Config{Address: "device:/dev/tpm0"}, "/dev/tpm0", "device:/dev/tpm0"},
	} {
		b, err := Open(tc.cfg)
		if err != nil {
			t.Errorf("Open(%+v): %v", tc.cfg, err)
			continue
		}
		if got := b.ep.String(); got != tc.want {
			t.Errorf("%+v: endpoint %q, want %q", tc.cfg, got, tc.want)
		}
		if got := b.TCTI(); got != tc.wantTCTI {
			t.Errorf("%+v: TCTI %q, want %q", tc.cfg, got, tc.wantTCTI)
		}
		if got, _ := tc.cfg.TCTI(); got != tc.wantTCTI {
			t.Errorf("%+v: Config.TCTI %q, want %q", tc.cfg, got, tc.wantTCTI)
		}
	}
	for _, cfg := range []Config{
		{Device: "/dev/tpm0", Address: "tcp://127.0.0.1:2321"},
		{Address: "127.0.0.1:2321"},
		{Address: "tcp://127.0.0.1"},
		{Address: "unix://"},
		{Address: "swtpm:port=x"},
		{Address: "swtpm:bogus=1"},
		{Address: "mssim:host=localhost"},
		{Address: "ftp://x:1"},
		{ParentHandle: 0x80000001},
		{ParentHandle: 0x40000007},
	} {
		if _, err := Open(cfg); err == nil {
			t.Errorf("Open(%+v) accepted a bad config", cfg)
		}
	}
}

func TestParseHandle(t *testing.T) {
	for in, want := range map[string]uint32{
		"": OwnerHierarchy, "owner": OwnerHierarchy, "0x40000001": OwnerHierarchy,
		"0x81000001": 0x81000001, "2164260865": 0x81000001,
	} {
		if got, err := ParseHandle(in); err != nil || got != want {
			t.Errorf("ParseHandle(%q) = 0x%x, %v; want 0x%x", in, got, err, want)
		}
	}
	for _, in := range []string{"0x80000000", "endorsement", "0x1ffffffff", "-1"} {
		if _, err := ParseHandle(in); err == nil {
			t.Errorf("ParseHandle(%q) accepted", in)
		}
	}
}
