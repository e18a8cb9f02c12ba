package tlsconf

import (
	"slices"
	"sync"

	"github.com/evsesec/evsesec/store"
)

// Events fans the store's events out to every config built from the store and to any other
// subscriber. The store takes a single callback at Open; pass Publish as that callback:
//
//	ev := &tlsconf.Events{}
//	st, err := store.Open(cfg, store.Options{OnEvent: ev.Publish})
//
// and give ev to the options of OCPPClientConfig and SECCServerConfig. The configs do not
// subscribe: they compare change counters Events keeps per leaf type and trust domain at each
// handshake, so an event is never lost and nothing runs in the store's goroutine on their behalf.
// The zero value is ready to use; an Events must not be copied after first use.
type Events struct {
	mu     sync.Mutex
	leaves map[store.LeafType]uint64
	cas    map[store.CAType]uint64
	other  uint64 // events that name neither a leaf type nor a domain
	subs   map[uint64]func(store.Event)
	nextID uint64
}

// Publish records e and calls every subscriber with it, in the caller's goroutine, in the order
// they subscribed. It has the signature of store.Options.OnEvent.
func (ev *Events) Publish(e store.Event) {
	ev.mu.Lock()
	switch {
	case e.LeafType != "":
		if ev.leaves == nil {
			ev.leaves = map[store.LeafType]uint64{}
		}
		ev.leaves[e.LeafType]++
	case e.CAType != "":
		if ev.cas == nil {
			ev.cas = map[store.CAType]uint64{}
		}
		ev.cas[e.CAType]++
	default:
		ev.other++
	}
	ids := make([]uint64, 0, len(ev.subs))
	for id := range ev.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fns := make([]func(store.Event), 0, len(ids))
	for _, id := range ids {
		fns = append(fns, ev.subs[id])
	}
	ev.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

// Subscribe makes fn receive every event published from now on, until cancel is called. fn runs
// in the store's goroutine after the store has been unlocked: it may call the store, but must not
// block for long.
func (ev *Events) Subscribe(fn func(store.Event)) (cancel func()) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.subs == nil {
		ev.subs = map[uint64]func(store.Event){}
	}
	id := ev.nextID
	ev.nextID++
	ev.subs[id] = fn
	return func() {
		ev.mu.Lock()
		defer ev.mu.Unlock()
		delete(ev.subs, id)
	}
}

// generation counts the events that concern leaves of type lt or the trust domain ct (and those
// that name neither). It only grows; a config rebuilds what it cached when it changes. A nil
// Events always answers 0.
func (ev *Events) generation(lt store.LeafType, ct store.CAType) uint64 {
	if ev == nil {
		return 0
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.leaves[lt] + ev.cas[ct] + ev.other
}
