package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and limits of the signature scheme.
const (
	TimestampHeader = "Koshin-Timestamp"
	SignatureHeader = "Koshin-Signature"
	// MinSecretLen is the shortest secret accepted: 256 bits, the size of
	// the HMAC-SHA256 output.
	MinSecretLen = 32
	// DefaultTolerance is how far a request's timestamp may be from the
	// receiver's clock.
	DefaultTolerance = 5 * time.Minute
	// maxSignatureHeader bounds the header a receiver parses.
	maxSignatureHeader = 1024
	maxSignatures      = 8
	signatureScheme    = "v1"
)

// Verification errors, distinguishable with errors.Is.
var (
	ErrMalformed = errors.New("webhook: malformed signature headers")
	ErrTimestamp = errors.New("webhook: timestamp outside tolerance")
	ErrSignature = errors.New("webhook: signature does not match")
	ErrSecret    = errors.New("webhook: secret missing or shorter than 32 bytes")
)

// Sign returns the Koshin-Signature value for body signed at timestamp.
func Sign(secret []byte, timestamp int64, body []byte) string {
	return signatureScheme + "=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery's headers against body: the timestamp must be
// within tolerance of now (DefaultTolerance if tolerance ≤ 0), which
// refuses replays of old requests, and one of the v1 signatures must be
// the MAC of timestamp and body under secret, compared in constant time.
// Receivers should also drop notification IDs they have seen within the
// tolerance.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinSecretLen {
		return ErrSecret
	}
	ts, sigs, err := parseHeaders(h)
	if err != nil {
		return err
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s from now", ErrTimestamp, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return nil
		}
	}
	return ErrSignature
}

// parseHeaders reads the timestamp and the v1 signatures. Entries of other
// schemes are skipped so that a future scheme can be sent alongside v1.
func parseHeaders(h http.Header) (int64, [][]byte, error) {
	ts, err := parseTimestamp(h.Get(TimestampHeader))
	if err != nil {
		return 0, nil, err
	}
	sigs, err := parseSignatures(h.Get(SignatureHeader))
	return ts, sigs, err
}

func parseTimestamp(v string) (int64, error) {
	if v == "" || len(v) > 18 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, fmt.Errorf("%w: timestamp must be unix seconds", ErrMalformed)
	}
	ts, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: timestamp must be unix seconds", ErrMalformed)
	}
	return ts, nil
}

func parseSignatures(v string) ([][]byte, error) {
	if v == "" || len(v) > maxSignatureHeader {
		return nil, fmt.Errorf("%w: signature header missing or too long", ErrMalformed)
	}
	entries := strings.Split(v, ",")
	if len(entries) > maxSignatures {
		return nil, fmt.Errorf("%w: too many signatures", ErrMalformed)
	}
	var sigs [][]byte
	for _, e := range entries {
		scheme, value, ok := strings.Cut(strings.TrimSpace(e), "=")
		if !ok {
			return nil, fmt.Errorf("%w: signature entry without '='", ErrMalformed)
		}
		if scheme != signatureScheme {
			continue
		}
		sig, err := hex.DecodeString(value)
		if err != nil || len(sig) != sha256.Size {
			return nil, fmt.Errorf("%w: v1 signature must be %d hex digits", ErrMalformed, 2*sha256.Size)
		}
		sigs = append(sigs, sig)
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no v1 signature", ErrMalformed)
	}
	return sigs, nil
}
