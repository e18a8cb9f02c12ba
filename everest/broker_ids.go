package everest

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// packetIDs makes the embedded broker keep a client's packet identifiers apart from its own.
//
// mochi-mqtt v2.7 keeps the identifiers a client chooses for its QoS 1/2 publications and the
// ones the broker chooses for its deliveries to that client in one inflight map
// (mochi-mqtt/server#519, #545). A module both calls (publishes QoS 2) and is called (receives
// QoS 2), so the two spaces collide within a few hundred calls: a delivery is overwritten, its
// quota never comes back, and the broker finally disconnects the client with "receive maximum
// exceeded" — every call in flight is lost. This hook renames each incoming QoS 1/2 publication's
// identifier to one the broker allocates for that client (so the map never holds both meanings
// of a number) and renames it back on the acknowledgements the broker sends (PUBACK, PUBREC,
// PUBCOMP, which only ever answer the client's own publications).
//
// The same map is consulted for a client's SUBSCRIBE and UNSUBSCRIBE: mochi refuses one whose
// identifier equals that of a delivery still in flight to the client ("packet identifier in
// use", server.go processSubscribe), which over MQTT 3.1.1 is a SUBACK with the failure code
// 0x80 for every filter. A module subscribes while the manager publishes its retained topics
// at QoS 2, so such a clash is a matter of timing, and the lost subscription (the config
// answer's, say) is never made. The hook renames those identifiers too, to one free in the
// map, and renames the SUBACK or UNSUBACK back.
type packetIDs struct {
	mqtt.HookBase
	mu      sync.Mutex
	clients map[*mqtt.Client]*idMap
}

// idMap is one client's renaming: its identifier → the broker's, and back; subs is the same
// for its SUBSCRIBE and UNSUBSCRIBE packets (broker's → client's), kept apart because their
// acknowledgements are other packet types.
type idMap struct {
	toBroker map[uint16]uint16
	toClient map[uint16]uint16
	subs     map[uint16]uint16
}

func newPacketIDs() *packetIDs { return &packetIDs{clients: map[*mqtt.Client]*idMap{}} }

// ID names the hook.
func (*packetIDs) ID() string { return "evsesec-packet-ids" }

// Provides says which hook methods the hook implements.
func (*packetIDs) Provides(b byte) bool {
	return b == mqtt.OnPacketRead || b == mqtt.OnPacketEncode || b == mqtt.OnDisconnect
}

func (h *packetIDs) mapOf(cl *mqtt.Client) *idMap {
	m := h.clients[cl]
	if m == nil {
		m = &idMap{toBroker: map[uint16]uint16{}, toClient: map[uint16]uint16{}, subs: map[uint16]uint16{}}
		h.clients[cl] = m
	}
	return m
}

// OnPacketRead renames the identifier of an incoming QoS 1/2 PUBLISH (a resent one keeps the
// name it got), of an incoming PUBREL, and of an incoming SUBSCRIBE or UNSUBSCRIBE.
func (h *packetIDs) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch {
	case pk.FixedHeader.Type == packets.Publish && pk.FixedHeader.Qos > 0 && pk.PacketID != 0:
		h.mu.Lock()
		z, ok := h.mapOf(cl).toBroker[pk.PacketID]
		h.mu.Unlock()
		if ok {
			pk.PacketID = z
			return pk, nil
		}
		// NextPacketID returns an identifier free in the client's inflight map and moves the
		// broker's own counter past it, so the broker does not hand it out before the flow ends.
		id, err := cl.NextPacketID()
		if err != nil {
			return pk, nil // no free identifier: leave it as it is
		}
		h.mu.Lock()
		m := h.mapOf(cl)
		m.toBroker[pk.PacketID] = uint16(id)
		m.toClient[uint16(id)] = pk.PacketID
		h.mu.Unlock()
		pk.PacketID = uint16(id)
	case pk.FixedHeader.Type == packets.Pubrel:
		h.mu.Lock()
		if z, ok := h.mapOf(cl).toBroker[pk.PacketID]; ok {
			pk.PacketID = z
		}
		h.mu.Unlock()
	case pk.FixedHeader.Type == packets.Subscribe || pk.FixedHeader.Type == packets.Unsubscribe:
		// mochi reads and answers one packet of a client at a time, so the identifier is
		// still free when processSubscribe looks it up, and its SUBACK is encoded before the
		// client's next packet is read.
		id, err := cl.NextPacketID()
		if err != nil {
			return pk, nil
		}
		h.mu.Lock()
		h.mapOf(cl).subs[uint16(id)] = pk.PacketID
		h.mu.Unlock()
		pk.PacketID = uint16(id)
	}
	return pk, nil
}

// OnPacketEncode renames the broker's acknowledgements of the client's publications back (the
// flow ends with PUBACK at QoS 1, PUBCOMP at QoS 2), and those of its SUBSCRIBE and UNSUBSCRIBE.
func (h *packetIDs) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	t := pk.FixedHeader.Type
	if t != packets.Puback && t != packets.Pubrec && t != packets.Pubcomp && t != packets.Suback && t != packets.Unsuback {
		return pk
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.clients[cl]
	if m == nil {
		return pk
	}
	if t == packets.Suback || t == packets.Unsuback {
		if y, ok := m.subs[pk.PacketID]; ok {
			delete(m.subs, pk.PacketID)
			pk.PacketID = y
		}
		return pk
	}
	y, ok := m.toClient[pk.PacketID]
	if !ok {
		return pk
	}
	if t != packets.Pubrec {
		delete(m.toClient, pk.PacketID)
		delete(m.toBroker, y)
	}
	pk.PacketID = y
	return pk
}

// OnDisconnect forgets the client's renaming (sessions are clean).
func (h *packetIDs) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.clients, cl)
	h.mu.Unlock()
}
