package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/koshin-ota/koshin/compliance"
	"github.com/koshin-ota/koshin/fleetfacts"
	"github.com/koshin-ota/koshin/httpapi"
	"github.com/koshin-ota/koshin/sqlite"
)

// fleetSource says where `koshin compliance report` observes the fleet
// besides a facts file: a running server's management API, or a server's
// store read directly.
type fleetSource struct {
	api                      apiFlags
	store                    string
	pollInterval, pollJitter time.Duration
	windowDays               int
}

func (s *fleetSource) addFlags(fl *pflag.FlagSet) {
	fl.StringVar(&s.api.server, "server", "", "observe the fleet through the management API at `URL`")
	fl.StringVar(&s.api.caFile, "ca", "", "with --server: server CA certificate `FILE` to trust ($"+envCA+")")
	fl.StringVar(&s.api.tokenFile, "token-file", "", "with --server: read the API token from `FILE` instead of $"+envToken)
	fl.StringVar(&s.store, "store", "", "observe the fleet in a server's store, `sqlite:DIR` (the data directory or its koshin.db)")
	fl.DurationVar(&s.pollInterval, "poll-interval", httpapi.DefaultConfig.PollInterval, "with --store: the server's poll interval")
	fl.DurationVar(&s.pollJitter, "poll-jitter", httpapi.DefaultConfig.PollJitter, "with --store: the server's poll jitter")
	fl.IntVar(&s.windowDays, "window-days", fleetfacts.DefaultWindowDays, "with --store: days of events to count")
}

// open returns the fleet to report on; nil without a source, so the
// report says which answers wait for fleet data instead of guessing them.
func (s *fleetSource) open(ctx context.Context, m *Main, file string) (compliance.Fleet, error) {
	n := 0
	for _, v := range []string{file, s.api.server, s.store} {
		if v != "" {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, usagef("give one of --fleet, --server and --store")
	case file != "":
		return readFleet(file)
	case s.api.server != "":
		return s.fromServer(ctx, m)
	case s.store != "":
		return s.fromStore(ctx, m)
	}
	return nil, nil
}

// fromServer fetches the server's facts once, validated like a file's.
func (s *fleetSource) fromServer(ctx context.Context, m *Main) (compliance.Fleet, error) {
	c, err := m.apiClient(s.api)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, "GET", "/api/v1/compliance/fleet", nil, &raw); err != nil {
		return nil, fmt.Errorf("fleet facts: %w", err)
	}
	facts, err := compliance.ReadFleetFacts(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("fleet facts from %s: %w", s.api.server, err)
	}
	return compliance.StaticFleet{F: *facts}, nil
}

// fromStore computes the facts from a SQLite store, as the server would.
// The database may be in use by a running server: SQLite lets a reader in
// beside it.
func (s *fleetSource) fromStore(ctx context.Context, m *Main) (compliance.Fleet, error) {
	kind, path, _ := strings.Cut(s.store, ":")
	if kind != storeSQLite || path == "" {
		return nil, usagef("--store must be sqlite:DIR or sqlite:FILE (for PostgreSQL, use --server)")
	}
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	} else if fi.IsDir() {
		path = filepath.Join(path, dbFile)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db := sqlite.NewDB(path)
	db.Now = m.Now
	if err := db.Open(ctx); err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	defer db.Close()
	fl := &fleetfacts.Fleet{Store: db, PollInterval: s.pollInterval, PollJitter: s.pollJitter, WindowDays: s.windowDays, Now: m.Now}
	facts, err := fl.Facts(ctx)
	if err != nil {
		return nil, err
	}
	return compliance.StaticFleet{F: *facts}, nil
}

// newSecurityTxtCmd is `koshin compliance security-txt`: the RFC 9116
// file the server serves at /.well-known/security.txt, for publishing on
// the manufacturer's own web site too, where researchers look first.
func newSecurityTxtCmd(m *Main) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "security-txt --profile FILE",
		Short: "Print the profile's disclosure contact as an RFC 9116 security.txt",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := readProfile(profile)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(p.SecurityTxt(m.Now()))
			return err
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "product profile YAML (required)")
	cobra.CheckErr(cmd.MarkFlagRequired("profile"))
	return cmd
}
