package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust/verify"
)

// simServer is the device's agent.Server: the real device API client,
// silent while the board has no power, counting what the server
// acknowledged.
type simServer struct{ d *device }

func (s simServer) CheckIn(ctx context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	if s.d.board.Inj.Dead() {
		return deviceapi.CheckInResponse{}, errNoPower
	}
	return s.d.api.CheckIn(ctx, c)
}

func (s simServer) Events(ctx context.Context, b deviceapi.EventBatch) error {
	d := s.d
	if d.board.Inj.Dead() {
		return errNoPower
	}
	for _, e := range b.Events {
		if finalEvent(e.Type) {
			d.lastFinal = e.Type
		}
	}
	if err := d.api.Events(ctx, b); err != nil {
		return err
	}
	if d.delivered == nil {
		d.delivered = map[string]bool{}
	}
	for _, e := range b.Events {
		if !d.delivered[e.ID] {
			d.delivered[e.ID] = true
			d.f.eventDelivered(e.Type)
		}
	}
	return nil
}

func finalEvent(t deviceapi.EventType) bool {
	switch t {
	case deviceapi.EventCommitted, deviceapi.EventRolledBack, deviceapi.EventFailed, deviceapi.EventRejected:
		return true
	}
	return false
}

// report sends an event the user's decision produced (the local control
// API's job on a real device).
func (d *device) report(ctx context.Context, typ deviceapi.EventType, target string) {
	b := make([]byte, 8)
	rand.Read(b)
	ev := deviceapi.Event{ID: hex.EncodeToString(b) + "-" + string(typ), Type: typ, Target: target, Time: time.Now().UTC()}
	simServer{d}.Events(ctx, deviceapi.EventBatch{Events: []deviceapi.Event{ev}})
}

// fetcher is the agent's payload fetcher: the trust core's HTTP fetcher
// on the device's link, counting resumed downloads.
type fetcher struct {
	d *device
	f *verify.HTTPFetcher
}

func (x fetcher) Open(ctx context.Context, url string, offset int64) (io.ReadCloser, error) {
	if x.d.board.Inj.Dead() {
		return nil, errNoPower
	}
	if offset > 0 {
		x.d.f.resumedDownloads.Add(1)
	}
	return x.f.Open(ctx, url, offset)
}

// health is the health check of the new image: it fails on HealthFail
// devices.
type health struct{ d *device }

var errUnhealthy = errors.New("simulated: the application did not come up on the new image")

func (h health) Check(context.Context) error {
	if h.d.persona.healthFail {
		return errUnhealthy
	}
	return nil
}

// approve is the device user, for consent-mode rollouts: postponing
// users postpone the first offers and then accept; declining users
// decline. Automatic and forced updates need no approval (the server
// ignores a user's objection to a forced one, CCDS UPD11).
func (d *device) approve(ctx context.Context, t agent.Target, mode deviceapi.Mode) bool {
	switch mode {
	case deviceapi.ModeAutomatic, deviceapi.ModeForced, "":
		return true
	case deviceapi.ModeConsent:
	default:
		return false // download-only waits for a later rollout
	}
	switch {
	case d.persona.decline:
		if !d.declined {
			d.declined = true
			d.report(ctx, deviceapi.EventDeclined, t.Name)
		}
		d.setState(StateDeclined)
		return false
	case d.persona.postpone && d.postponed < d.f.cfg.Scenario.PostponeTimes:
		d.postponed++
		d.report(ctx, deviceapi.EventPostponed, t.Name)
		d.setState(StatePostponed)
		return false
	}
	return true
}

// observe derives the device's displayed state from the engine after
// every step, and counts finished transactions.
func (d *device) observe(ctx context.Context, eng *agent.Engine) {
	if d.board.Inj.Dead() {
		return
	}
	st, err := eng.Status(ctx)
	if err != nil {
		return
	}
	tx := st.Tx
	if tx == nil {
		if d.lastFinal == deviceapi.EventRejected {
			d.setState(StateRejected) // the director's instruction itself was refused
		} else if d.State() == StateEnrolling && d.ready.Load() {
			d.setState(StateIdle)
		}
		return
	}
	d.f.learnTarget(tx.Target.SHA256(), tx.Target.Length)
	d.txActive = !tx.State.Terminal()
	if d.txActive {
		d.setState(activeState(tx.State))
		return
	}
	if tx.ID == d.lastTx {
		return
	}
	d.lastTx = tx.ID
	d.cutWindow = d.f.cutWindow
	d.setState(d.outcome(tx))
	if d.State() == StateUpdated && d.interrupted.Load() {
		d.f.resumedInstalls.Add(1)
	}
	d.interrupted.Store(false)
}

func activeState(s agent.State) State {
	switch s {
	case agent.StateDownloading, agent.StateVerifying:
		return StateDownloading
	case agent.StateInstalling:
		return StateInstalling
	}
	return StateRebooting
}

func (d *device) outcome(tx *agent.Transaction) State {
	switch tx.State {
	case agent.StateCommitted:
		return StateUpdated
	case agent.StateRolledBack:
		return StateRolledBack
	}
	if d.lastFinal == deviceapi.EventRejected {
		return StateRejected
	}
	return StateFailed
}
