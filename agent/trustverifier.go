package agent

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/verify"
)

// TrustVerifier is the production Verifier: the trust core's verifier with
// the payload watchdog settings.
type TrustVerifier struct {
	V *verify.Verifier
	// Watchdog configures the minimum-throughput watchdog (slow-retrieval
	// attack); its Now is the engine's clock.
	Watchdog verify.PayloadOptions
}

var _ Verifier = (*TrustVerifier)(nil)

// Check refreshes the image repository, then verifies the director's
// instruction.
func (t *TrustVerifier) Check(ctx context.Context, director []byte, nonce string, installed map[string]uint64) ([]Target, error) {
	t.V.SetInstalled(installed)
	if err := t.V.RefreshImage(ctx); err != nil {
		return nil, fmt.Errorf("refresh image repository: %w", err)
	}
	plan, err := t.V.CheckDirector(ctx, director, nonce)
	if err != nil {
		return nil, err
	}
	out := make([]Target, 0, len(plan.Targets))
	for _, in := range plan.Targets {
		tg := Target{Name: in.Name, URL: in.URL, Length: in.Length, Hashes: map[string]string{},
			Custom: in.Custom, WrappedKey: in.WrappedKey}
		for alg, h := range in.Hashes {
			tg.Hashes[alg] = hex.EncodeToString(h)
		}
		if err := tg.Validate(); err != nil {
			return nil, err
		}
		out = append(out, tg)
	}
	return out, nil
}

// Payload returns the trust core's streaming PayloadReader, resumed from
// checkpoint when one is given.
func (t *TrustVerifier) Payload(tg Target, body io.Reader, offset int64, checkpoint []byte) (PayloadReader, error) {
	in, err := tg.install()
	if err != nil {
		return nil, err
	}
	if checkpoint == nil {
		if offset != 0 {
			return nil, fmt.Errorf("%w: offset %d without a checkpoint", trust.ErrInvalid, offset)
		}
		return trustReader{verify.NewPayloadReader(body, in, t.Watchdog)}, nil
	}
	pr, err := verify.ResumePayloadReader(body, in, checkpoint, t.Watchdog)
	if err != nil {
		return nil, err
	}
	if pr.Offset() != offset {
		return nil, fmt.Errorf("%w: checkpoint is at %d, journal says %d", trust.ErrInvalid, pr.Offset(), offset)
	}
	return trustReader{pr}, nil
}

func (tg *Target) install() (verify.Install, error) {
	in := verify.Install{Name: tg.Name, Length: tg.Length, Hashes: map[string][]byte{},
		Custom: tg.Custom, WrappedKey: tg.WrappedKey, URL: tg.URL}
	for alg, h := range tg.Hashes {
		b, err := hex.DecodeString(h)
		if err != nil {
			return in, fmt.Errorf("%w: hash %s", trust.ErrInvalid, alg)
		}
		in.Hashes[alg] = b
	}
	return in, nil
}

type trustReader struct{ *verify.PayloadReader }

func (r trustReader) Checkpoint() ([]byte, error) {
	b, _, err := r.PayloadReader.Checkpoint()
	return b, err
}
