package main

import (
	"context"
	"errors"
	"time"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/agent/control"
	"github.com/koshin-ota/koshin/agent/identity"
)

// Run serves the control API and runs the engine until ctx ends. It
// returns errRestart after a factory reset (the identity changed).
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A reset interrupted by a power cut finishes before anything talks to
	// the server with what is left of the old identity.
	if res, err := a.control.ResumeReset(ctx); err != nil {
		return err
	} else if res != nil {
		a.log.Warn("interrupted factory reset finished", "device", res.DeviceID)
		return errRestart
	}
	gid, err := socketGroup(a.cfg.Control.SocketGroup)
	if err != nil {
		return err
	}
	ln, err := control.Listen(a.cfg.Control.Socket, gid)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- a.control.Serve(ctx, ln) }()
	go func() { errc <- a.runEngine(ctx) }()
	if a.renewer != nil {
		go a.renewLoop(ctx)
	}
	if !a.id.Enrolled() {
		go a.watchEnrollment(ctx)
	}
	var result error
	select {
	case <-a.reset:
		result = errRestart
	case result = <-errc:
		cancel()
		<-errc
		return result
	case <-ctx.Done():
	}
	cancel()
	<-errc
	<-errc
	return result
}

// runEngine polls until ctx ends. Once the engine asked for a reboot it
// keeps the control API up (status stays readable) until the system goes
// down and ends this process.
func (a *Agent) runEngine(ctx context.Context) error {
	err := a.engine.Run(ctx)
	if errors.Is(err, agent.ErrReboot) {
		a.log.Info("reboot requested; waiting for the system to go down")
		<-ctx.Done()
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// renewLoop renews the device certificate before it expires, checking
// once a day.
func (a *Agent) renewLoop(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		if a.renewer.Due() {
			if err := a.renewer.Renew(ctx); err != nil {
				a.log.Warn("certificate renewal failed; will retry", "err", err)
			} else {
				a.log.Info("device certificate renewed", "expires", a.renewer.Cert.Leaf().NotAfter)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waker is the engine's Sleep, which the control API can cut short so an
// approved update installs now rather than at the next scheduled check-in.
type waker struct{ ch chan struct{} }

func newWaker() *waker { return &waker{ch: make(chan struct{}, 1)} }

func (w *waker) wake() {
	select {
	case w.ch <- struct{}{}:
	default:
	}
}

func (w *waker) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// watchEnrollment restarts the agent once `koshin-agent enroll` stored a
// certificate for this identity (after a factory reset the daemon keeps
// running unenrolled; enrolling must not need a manual restart).
func (a *Agent) watchEnrollment(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		id, err := identity.Store{Dir: a.cfg.dir(identityDir)}.Load()
		if err == nil && id.Enrolled() {
			a.log.Info("device enrolled; restarting with its certificate", "device", id.ID)
			a.restart()
			return
		}
	}
}
