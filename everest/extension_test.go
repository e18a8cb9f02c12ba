package everest_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/evsesec/evsesec/api"
	"github.com/evsesec/evsesec/everest"
	"github.com/evsesec/evsesec/everest/everesttest"
	"github.com/evsesec/evsesec/store"
	"github.com/evsesec/evsesec/testpki"
)

// V2G20 is an evsesec extension of LeafCertificateType: the upstream interface schema refuses
// it, the schema with evsesec's marked extensions accepts it and nothing else beyond upstream,
// and a caller that never sends it gets answers the upstream schema accepts.
func TestV2G20IsAMarkedExtension(t *testing.T) {
	upstream := everesttest.LoadSchemas(t)
	extended := everesttest.LoadExtendedSchemas(t)
	args := func(lt string) json.RawMessage {
		return json.RawMessage(`{"certificate_type":"` + lt + `","encoding":"PEM","include_ocsp":true}`)
	}
	if err := upstream.ValidateArgs("get_leaf_certificate_info", args("V2G20")); err == nil {
		t.Error("the upstream schema accepts V2G20")
	}
	if err := extended.ValidateArgs("get_leaf_certificate_info", args("V2G20")); err != nil {
		t.Errorf("the extended schema refuses V2G20: %v", err)
	}
	for _, s := range []*everesttest.Schemas{upstream, extended} {
		if err := s.ValidateArgs("get_leaf_certificate_info", args("V2G21")); err == nil {
			t.Error("a schema accepts V2G21")
		}
		if err := s.ValidateArgs("get_leaf_certificate_info", args("V2G")); err != nil {
			t.Errorf("a schema refuses V2G: %v", err)
		}
	}

	// The store's answers: V2G20 results fit the interface's result types, and its store update
	// fits only the extended schema; a V2G one fits the upstream schema as before.
	root := t.TempDir()
	p, err := testpki.Generate(testpki.Options{ISO15118_20: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.WriteLayout(root, ""); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.DefaultConfig(root), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := api.NewDispatcher(st)
	for _, lt := range []string{"V2G", "V2G20"} {
		res, err := d.Call(context.Background(), "get_leaf_certificate_info", args(lt))
		if err != nil {
			t.Fatal(err)
		}
		if err := upstream.ValidateResult("get_leaf_certificate_info", res); err != nil {
			t.Errorf("%s result %s: %v", lt, res, err)
		}
		var r store.CertificateInfoResult
		if json.Unmarshal(res, &r); r.Status != store.InfoAccepted {
			t.Errorf("%s: %s", lt, res)
		}
	}
	for _, lt := range []store.LeafType{store.LeafV2G, store.LeafV2G20} {
		raw, err := json.Marshal(api.StoreUpdateOf(store.Event{Operation: store.OperationInstalled, LeafType: lt}))
		if err != nil {
			t.Fatal(err)
		}
		upErr := upstream.ValidateVar(everest.StoreUpdateVar, raw)
		if extErr := extended.ValidateVar(everest.StoreUpdateVar, raw); extErr != nil {
			t.Errorf("%s: the extended schema refuses %s: %v", lt, raw, extErr)
		}
		if (upErr == nil) != (lt == store.LeafV2G) {
			t.Errorf("%s: upstream schema on %s: %v", lt, raw, upErr)
		}
	}
}
