// Package deviceapi holds the wire types of koshin's device API v1, shared by
// the server (which answers) and the agent (which asks). It imports only the
// standard library and the trust vocabulary so that the agent links no server
// code.
//
// All requests are JSON over HTTPS. Enrollment is the only call made without
// a client certificate; every other call uses mutual TLS with the device
// certificate issued at enrollment. Every field is validated and
// size-limited on both sides (EN 303 645 5.13-1).
//
//	POST /device/v1/enroll                  EnrollRequest → EnrollResponse
//	POST /device/v1/checkin                 CheckIn → CheckInResponse
//	POST /device/v1/events                  EventBatch → EventsResponse
//	GET  /device/v1/image/{file}            image repository metadata (TUF layout)
//	GET  /device/v1/director/{n}.root.json  director root chain
//	GET  /device/v1/targets/{hash}.{name}   payloads, HTTP Range supported
//	GET  /device/v1/advisories/{release}    the release's CSAF advisory (check its signed digest)
//
// Under load the server answers 429 or 503 with Retry-After; devices back off
// exponentially with full jitter (EN 303 645 5.9-3).
package deviceapi
