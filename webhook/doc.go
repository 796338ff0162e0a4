// Package webhook delivers rollout notifications (failed installs,
// rollbacks, halts: CCDS UPD10) to an HTTP endpoint the administrator
// configures, signed so that the receiver can tell they came from this
// server and are fresh.
//
// Each delivery is a POST of the notification as JSON with two headers:
//
//	Koshin-Timestamp: <unix seconds when this attempt was signed>
//	Koshin-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The MAC covers the timestamp, so a captured request cannot be replayed
// once it is older than the receiver's tolerance (Verify), and within the
// tolerance the notification's ID lets the receiver drop duplicates. The
// secret is shared between this server and the receiver and comes from
// configuration; there is no default. A receiver may list several v1
// signatures in one header so that secrets can be rotated without a gap.
package webhook
