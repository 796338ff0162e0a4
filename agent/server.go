package agent

import (
	"context"

	"github.com/koshin-ota/koshin/deviceapi"
)

// Server is the update server as the device sees it (device API v1). The
// HTTP client with mutual TLS, size limits and back-off lives in a
// transport package; the engine only needs these two calls.
type Server interface {
	// CheckIn sends the signed report and returns the server's answer,
	// possibly carrying director metadata signed for this device's nonce.
	CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error)
	// Events delivers queued reports. The server stores each event ID once,
	// so a batch re-sent after a lost answer is harmless.
	Events(ctx context.Context, b deviceapi.EventBatch) error
}
