package deviceapi

// Paths of device API v1, relative to the server's base URL.
const (
	PathEnroll   = "/device/v1/enroll"
	PathCheckIn  = "/device/v1/checkin"
	PathEvents   = "/device/v1/events"
	PathImage    = "/device/v1/image/"
	PathDirector = "/device/v1/director/"
	PathTargets  = "/device/v1/targets/"
	// PathAdvisories + release name: the release's CSAF advisory.
	PathAdvisories = "/device/v1/advisories/"
)

// Size limits for request and response bodies. The server reads at most
// these many bytes from a device; the agent at most these from the server.
const (
	MaxRequestBody  = 64 << 10
	MaxResponseBody = 1 << 20
	MaxEvents       = 100
	MaxComponents   = 32
	maxText         = 1024
	maxShort        = 128
)
