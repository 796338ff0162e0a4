package control

import (
	"context"
	"log/slog"
	"sync"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
)

// maxQueued bounds events waiting for the engine; the engine is busy for
// at most one update step, so the queue stays short in practice.
const maxQueued = 64

// reporter hands events to the engine's outbox from its own goroutine:
// the engine's lock is held for a whole update step, and a request must
// not wait that long to record a settings change.
type reporter struct {
	engine *agent.Engine
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}

	mu    sync.Mutex
	queue []deviceapi.Event
	busy  bool          // an event is being handed over
	idle  chan struct{} // closed when queue and busy are both empty
}

func newReporter(e *agent.Engine, log *slog.Logger) *reporter {
	ctx, cancel := context.WithCancel(context.Background())
	r := &reporter{engine: e, log: log, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *reporter) add(ev deviceapi.Event) {
	r.mu.Lock()
	if len(r.queue) >= maxQueued {
		r.log.Warn("control API event dropped: queue full", "type", ev.Type)
	} else {
		r.queue = append(r.queue, ev)
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.wake:
		}
		for r.handOne() {
		}
	}
}

// handOne gives the oldest event to the engine; false when none is left.
func (r *reporter) handOne() bool {
	r.mu.Lock()
	if len(r.queue) == 0 {
		r.busy = false
		r.signalIdle()
		r.mu.Unlock()
		return false
	}
	ev := r.queue[0]
	r.queue = r.queue[1:]
	r.busy = true
	r.mu.Unlock()
	if err := r.engine.Report(r.ctx, ev); err != nil {
		r.log.Warn("queue report", "type", ev.Type, "err", err)
	}
	return true
}

func (r *reporter) signalIdle() {
	if r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
}

// drain waits until every queued event has been handed over.
func (r *reporter) drain(ctx context.Context) error {
	r.mu.Lock()
	if len(r.queue) == 0 && !r.busy {
		r.mu.Unlock()
		return nil
	}
	if r.idle == nil {
		r.idle = make(chan struct{})
	}
	idle := r.idle
	r.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *reporter) stop() {
	r.cancel()
	<-r.done
}
