package agenttest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/koshin-ota/koshin/agent"
	"github.com/koshin-ota/koshin/deviceapi"
	"github.com/koshin-ota/koshin/trust"
	"github.com/koshin-ota/koshin/trust/trusttest"
)

// ErrOffline is what Server returns while Offline is set.
var ErrOffline = errors.New("agenttest: server unreachable")

// Server is a fake update server with an honest director: while Assign
// names a target the device has neither installed nor finished (committed,
// rolled back, failed, rejected), every check-in gets a fresh instruction
// for it, signed by Dir and echoing the report's nonce.
type Server struct {
	Img, Dir *trusttest.Repo
	Device   trust.Device
	// PublicKey, if set, must verify every report's Ed25519 signature.
	PublicKey ed25519.PublicKey
	// Link, if set, is the device's injector: a device without power
	// sends nothing.
	Link *Injector
	// Instruct, if set, replaces the honest director (e.g. to wrap a
	// content key into the instruction).
	Instruct func(nonce string) []byte

	mu       sync.Mutex
	assign   string
	offline  bool
	events   []deviceapi.Event
	seen     map[string]bool
	reports  []deviceapi.Report
	checkIns int
}

var _ agent.Server = (*Server)(nil)

// Assign sets the target to offer ("" for none).
func (s *Server) Assign(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assign = name
}

// SetOffline makes every call fail.
func (s *Server) SetOffline(off bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offline = off
}

// CheckIn implements agent.Server.
func (s *Server) CheckIn(_ context.Context, c deviceapi.CheckIn) (deviceapi.CheckInResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := deviceapi.CheckInResponse{PollInterval: 60, PollJitter: 30}
	if err := s.reachable(); err != nil {
		return resp, err
	}
	rep, err := s.decode(c)
	if err != nil {
		return resp, err
	}
	s.checkIns++
	s.reports = append(s.reports, rep)
	if s.offering(rep) {
		if s.Instruct != nil {
			resp.Director = s.Instruct(c.Nonce)
		} else {
			resp.Director = s.Dir.Instruct(s.Img, s.Device, c.Nonce, s.assign)
		}
		resp.Mode = deviceapi.ModeAutomatic
	}
	return resp, nil
}

func (s *Server) decode(c deviceapi.CheckIn) (deviceapi.Report, error) {
	var rep deviceapi.Report
	if err := c.Validate(); err != nil {
		return rep, err
	}
	if s.PublicKey != nil && !ed25519.Verify(s.PublicKey, c.Report, c.Signature) {
		return rep, fmt.Errorf("%w: report signature", trust.ErrInvalid)
	}
	if err := json.Unmarshal(c.Report, &rep); err != nil {
		return rep, err
	}
	return rep, rep.Validate()
}

func (s *Server) offering(rep deviceapi.Report) bool {
	if s.assign == "" {
		return false
	}
	for _, c := range rep.Components {
		if c.Target == s.assign {
			return false
		}
	}
	for _, e := range s.events {
		if e.Target == s.assign && final(e.Type) {
			return false
		}
	}
	return true
}

func (s *Server) reachable() error {
	if s.Link != nil {
		if err := s.Link.Alive(); err != nil {
			return err
		}
	}
	if s.offline {
		return ErrOffline
	}
	return nil
}

func final(t deviceapi.EventType) bool {
	switch t {
	case deviceapi.EventCommitted, deviceapi.EventRolledBack, deviceapi.EventFailed, deviceapi.EventRejected:
		return true
	}
	return false
}

// Events implements agent.Server; it stores each event ID once.
func (s *Server) Events(_ context.Context, b deviceapi.EventBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reachable(); err != nil {
		return err
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	for _, e := range b.Events {
		if !s.seen[e.ID] {
			s.seen[e.ID] = true
			s.events = append(s.events, e)
		}
	}
	return nil
}

// Received returns the stored events in arrival order.
func (s *Server) Received() []deviceapi.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]deviceapi.Event(nil), s.events...)
}

// Count returns how many stored events have type t.
func (s *Server) Count(t deviceapi.EventType) int {
	n := 0
	for _, e := range s.Received() {
		if e.Type == t {
			n++
		}
	}
	return n
}

// Reports returns the reports received.
func (s *Server) Reports() []deviceapi.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]deviceapi.Report(nil), s.reports...)
}
