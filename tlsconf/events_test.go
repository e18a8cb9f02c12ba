package tlsconf

import (
	"slices"
	"sync"
	"testing"

	"github.com/evsesec/evsesec/store"
)

func TestEventsFanOut(t *testing.T) {
	var ev Events
	var got1, got2 []store.Event
	cancel1 := ev.Subscribe(func(e store.Event) { got1 = append(got1, e) })
	ev.Subscribe(func(e store.Event) { got2 = append(got2, e) })

	leaf := store.Event{Kind: store.EventInstall, LeafType: store.LeafV2G}
	ca := store.Event{Kind: store.EventDelete, CAType: store.CACSMS}
	ev.Publish(leaf)
	cancel1()
	ev.Publish(ca)
	if !slices.Equal(got1, []store.Event{leaf}) || !slices.Equal(got2, []store.Event{leaf, ca}) {
		t.Errorf("subscriber 1 got %v, 2 got %v", got1, got2)
	}

	if g := ev.generation(store.LeafV2G, store.CAV2G); g != 1 {
		t.Errorf("V2G generation %d, want 1 (the V2G leaf event)", g)
	}
	if g := ev.generation(store.LeafCSMS, store.CACSMS); g != 1 {
		t.Errorf("CSMS generation %d, want 1 (the CSMS CA event)", g)
	}
	ev.Publish(store.Event{Kind: store.EventGC})
	if g := ev.generation(store.LeafV2G, store.CAV2G); g != 2 {
		t.Errorf("an event naming no type must count for every type; V2G generation %d", g)
	}
	var nilEvents *Events
	if nilEvents.generation(store.LeafV2G, store.CAV2G) != 0 {
		t.Error("nil Events has a generation")
	}
}

// The store's events reach the configs through Events.Publish as store.Options.OnEvent.
func TestEventsFromStore(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	var mu sync.Mutex
	var got []store.Event
	f.events.Subscribe(func(e store.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e)
	})
	before := f.events.generation(store.LeafV2G, store.CAV2G)
	installLeaf(t, f.st, store.LeafV2G, f.pki.CPOSubCA2, f.pki.SECCLeaf.Cert.NotAfter.AddDate(1, 0, 0))
	if f.events.generation(store.LeafV2G, store.CAV2G) == before {
		t.Error("installing a SECC leaf did not change the V2G generation")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || got[len(got)-1].LeafType != store.LeafV2G {
		t.Errorf("subscriber got %v", got)
	}
}
