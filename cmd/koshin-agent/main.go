// Command koshin-agent is koshin's device agent: the update engine and
// reporting engine that runs on each device (package agent), its local
// control API on a Unix socket (package agent/control), and the command
// line that enrolls the device and talks to that socket.
//
//	koshin-agent run                       the daemon
//	koshin-agent enroll ...                generate keys, enroll, provision roots
//	koshin-agent identity                  device ID and public key (factory lists)
//	koshin-agent status                    update state, settings, security state
//	koshin-agent approve|postpone|decline  decide about a pending update
//	koshin-agent settings [changes]        show or change the update settings
//	koshin-agent reset                     factory reset
//	koshin-agent install FILE              install an offline bundle
//	koshin-agent clear-alert               end the restriction after an unauthorised change
//
// It is a static binary (CGO_ENABLED=0) that links no server code;
// deps_test.go enforces that. Configuration: docs/integrator-guide.md.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Version is set at build time (-ldflags "-X main.Version=1.2.3").
var Version = "dev"

func main() { os.Exit(NewMain(os.Stdout, os.Stderr).Run(os.Args[1:])) }

// Main is the program with its streams, clock and environment, so tests
// run commands in process.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Now            func() time.Time
	Getenv         func(string) string
	// Signals, if set, ends `run` (default: SIGINT and SIGTERM).
	Signals func(context.Context) (context.Context, context.CancelFunc)
}

// NewMain returns a Main wired to the process.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Now: time.Now, Getenv: os.Getenv,
		Signals: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		}}
}

type command struct {
	run   func(m *Main, args []string) error
	usage string
}

var commands = map[string]command{
	"run":         {(*Main).runCmd, "run the agent daemon"},
	"enroll":      {(*Main).enrollCmd, "generate the device keys, enroll with the server, provision the trusted roots"},
	"identity":    {(*Main).identityCmd, "print the device ID and public key (for factory pre-authorisation)"},
	"status":      {(*Main).statusCmd, "show the update state, settings and security state"},
	"approve":     {(*Main).approveCmd, "approve the pending update"},
	"postpone":    {(*Main).postponeCmd, "postpone the pending update: postpone -for 24h | -until TIME"},
	"decline":     {(*Main).declineCmd, "decline the pending update"},
	"settings":    {(*Main).settingsCmd, "show or change the update settings"},
	"reset":       {(*Main).resetCmd, "factory reset: erase user data and keys, keep the software"},
	"install":     {(*Main).installCmd, "install an offline bundle: install FILE"},
	"clear-alert": {(*Main).clearAlertCmd, "end the restriction after an unauthorised change (root; reported to the server)"},
	"version":     {func(m *Main, _ []string) error { fmt.Fprintln(m.Stdout, Version); return nil }, "print the version"},
}

// errUsage marks command-line mistakes (exit status 2).
var errUsage = errors.New("usage")

// Run executes one command line and returns the exit status.
func (m *Main) Run(args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		m.usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(m.Stderr, "koshin-agent: unknown command %q\n", args[0])
		m.usage()
		return 2
	}
	err := c.run(m, args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(m.Stderr, "koshin-agent %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(m.Stderr, "koshin-agent %s: %v\n", args[0], err)
	return 1
}

func (m *Main) usage() {
	fmt.Fprintln(m.Stderr, "usage: koshin-agent COMMAND [flags]\n\ncommands:")
	for _, name := range []string{"run", "enroll", "identity", "status", "approve", "postpone", "decline", "settings", "reset", "install", "clear-alert", "version"} {
		fmt.Fprintf(m.Stderr, "  %-11s %s\n", name, commands[name].usage)
	}
	fmt.Fprintln(m.Stderr, "\nEvery command takes -config FILE (default "+DefaultConfigPath+"); see -h of each.")
}

// flagSet returns a flag set writing to stderr with -config.
func (m *Main) flagSet(name string, config *string) *flag.FlagSet {
	fs := flag.NewFlagSet("koshin-agent "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	def := DefaultConfigPath
	if v := m.Getenv("KOSHIN_AGENT_CONFIG"); v != "" {
		def = v
	}
	fs.StringVar(config, "config", def, "configuration `file`")
	return fs
}

// parse parses flags, turning errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// loadConfig reads the configuration; a missing file at the default path
// gives the defaults, so flags alone can configure the agent.
func (m *Main) loadConfig(path string, fs *flag.FlagSet) (*Config, error) {
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := LoadConfig(path)
	if errors.Is(err, os.ErrNotExist) && !explicit && m.Getenv("KOSHIN_AGENT_CONFIG") == "" {
		return ParseConfig([]byte("{}"))
	}
	return cfg, err
}

// logger logs text to stderr (journald adds time and unit).
func (m *Main) logger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(cmp.Or(level, "info")))); err != nil {
		return nil, fmt.Errorf("log_level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: l})), nil
}
