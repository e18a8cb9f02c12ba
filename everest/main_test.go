package everest_test

import (
	"io"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/evsesec/evsesec/internal/testtool"
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
type syncBuffer = testtool.SyncBuffer

// bufferLogger logs to b (and, with EVSESEC_TEST_LOG=1, to stderr too).
func bufferLogger(b *syncBuffer) *slog.Logger {
	var w io.Writer = b
	if os.Getenv("EVSESEC_TEST_LOG") != "" {
		w = io.MultiWriter(b, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
