// Command koshin is the operator tool: the image repository and its
// signing ceremonies (koshin repo …), releases (koshin release …) and, in
// other files of this package, the server and the demo.
//
// Every subcommand is a cobra command built from a *Main, which carries the
// process's streams, clock and passphrase source, so tests run commands in
// process with their own. A command file adds its top-level command with
// register in an init function; main.go never needs to change for it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/koshin-ota/koshin/trust/keys"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes one command line with the process's environment.
func run(args []string, stdout, stderr io.Writer) int {
	return NewMain(stdout, stderr).Run(args)
}

// Main is the program: what its commands need from the outside world.
type Main struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Now is the clock for expiries; tests fix it.
	Now func() time.Time
	// Getenv reads the environment (KOSHIN_REPO).
	Getenv func(string) string
	// Passphrase supplies key-file passphrases and token PINs: from
	// KOSHIN_PASSPHRASE or the terminal, never a default.
	Passphrase keys.PassphraseFunc
	// KDF is the Argon2id cost for new key files.
	KDF keys.KDFParams

	repoDir string // --repo
}

// NewMain returns a Main wired to the real process.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		Stdin:      os.Stdin,
		Stdout:     stdout,
		Stderr:     stderr,
		Now:        time.Now,
		Getenv:     os.Getenv,
		Passphrase: keys.PassphraseFromEnvOrTerminal(keys.DefaultPassphraseEnv),
		KDF:        keys.DefaultKDF,
	}
}

// commands are the constructors of top-level subcommands, added by each
// command file's init.
var commands []func(*Main) *cobra.Command

func register(c func(*Main) *cobra.Command) { commands = append(commands, c) }

// Run executes args and returns the exit status: 0 on success, 1 on error,
// 2 on a usage error.
func (m *Main) Run(args []string) int {
	root := m.rootCmd()
	root.SetArgs(args)
	root.SetIn(m.Stdin)
	root.SetOut(m.Stdout)
	root.SetErr(m.Stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(m.Stderr, "koshin: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || cobraUsage(err) {
		return 2
	}
	return 1
}

// cobraUsage recognises the usage errors cobra reports as plain errors
// (flag and argument validation).
func cobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"required flag(s)", "if any flags in the group", "at least one of the flags in the group", "unknown command", "accepts ", "requires at least"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (m *Main) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "koshin",
		Short: "Secure over-the-air updates for Linux device fleets",
		Long: `koshin signs, publishes and serves updates for fleets of Linux devices.
A device installs nothing that the manufacturer's image repository and the
fleet's director did not both sign for it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := m.Getenv("KOSHIN_REPO")
	if def == "" {
		def = "."
	}
	root.PersistentFlags().StringVar(&m.repoDir, "repo", def, "image repository workspace `DIR` ($KOSHIN_REPO sets the default)")
	for _, c := range commands {
		root.AddCommand(c(m))
	}
	return root
}

// usageError marks errors in how a command was called (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// isTerminal reports whether w is an interactive terminal (progress bars
// only make sense there, never in logs or pipes).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
