package everest

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/evsesec/evsesec/internal/testtool"
)

// mqttFrame is one MQTT packet with a body of n bytes.
func mqttFrame(typ byte, n int) []byte {
	return testtool.MQTTRemainingLength([]byte{typ}, n)
}

// readAll reads conn through a packetLimit in chunks of the given size.
func readAll(t *testing.T, stream []byte, max, chunk int) ([]byte, error) {
	t.Helper()
	client, server := net.Pipe()
	go func() {
		server.Write(stream)
		server.Close()
	}()
	c := &packetLimit{Conn: client, max: max}
	var got bytes.Buffer
	buf := make([]byte, chunk)
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			return got.Bytes(), nil
		}
		if err != nil {
			return got.Bytes(), err
		}
	}
}

// Packets up to the limit pass through unchanged, whatever the read sizes; the read that
// completes a larger length fails, before any of that packet's body is handed on.
func TestPacketLimit(t *testing.T) {
	var ok []byte
	for _, n := range []int{0, 2, 127, 128, 16383, 16384, 1000} {
		ok = append(ok, mqttFrame(0x30, n)...)
		ok = append(ok, bytes.Repeat([]byte{'x'}, n)...)
	}
	for _, chunk := range []int{1, 3, 7, 4096} {
		got, err := readAll(t, ok, 16384, chunk)
		if err != nil || !bytes.Equal(got, ok) {
			t.Errorf("chunk %d: %d of %d bytes, %v", chunk, len(got), len(ok), err)
		}
		big := append(append([]byte(nil), ok...), mqttFrame(0x30, 16385)...)
		big = append(big, bytes.Repeat([]byte{'y'}, 100)...)
		got, err = readAll(t, big, 16384, chunk)
		if err == nil || !strings.Contains(err.Error(), "over the limit") {
			t.Errorf("chunk %d: oversized packet: %v", chunk, err)
		}
		if bytes.Contains(got, []byte{'y'}) || len(got) > len(ok)+4 {
			t.Errorf("chunk %d: %d bytes of the oversized packet handed on", chunk, len(got)-len(ok))
		}
	}
	// A retained message the broker replays on subscribing passes (refusing it would end every
	// connection at it); the size check of the subscription drops it.
	retained := append(mqttFrame(0x31, 20000), bytes.Repeat([]byte{'r'}, 20000)...)
	retained = append(retained, ok...)
	if got, err := readAll(t, retained, 16384, 512); err != nil || !bytes.Equal(got, retained) {
		t.Errorf("retained oversized message: %d of %d bytes, %v", len(got), len(retained), err)
	}
	if _, err := readAll(t, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, 1<<30, 1); err == nil {
		t.Error("five-byte remaining length accepted")
	}
}
