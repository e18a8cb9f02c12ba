package everest_test

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any test leaves a goroutine behind (runner, MQTT clients,
// embedded brokers, the store's maintenance loop).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to stderr with EVSESEC_TEST_LOG=1, else nowhere.
func testLogger() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("EVSESEC_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// syncBuffer is a log sink the runner writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// bufferLogger logs to b (and, with EVSESEC_TEST_LOG=1, to stderr too).
func bufferLogger(b *syncBuffer) *slog.Logger {
	var w io.Writer = b
	if os.Getenv("EVSESEC_TEST_LOG") != "" {
		w = io.MultiWriter(b, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
