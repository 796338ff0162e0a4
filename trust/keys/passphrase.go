package keys

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// PassphraseFunc supplies a secret (a key file passphrase or a token PIN)
// when it is needed. The prompt says which key it is for. Callers clear the
// returned slice after use.
type PassphraseFunc func(prompt string) ([]byte, error)

// DefaultPassphraseEnv is the environment variable koshin's commands read a
// key passphrase from in unattended use (CI signing of dev builds).
const DefaultPassphraseEnv = "KOSHIN_PASSPHRASE"

// PassphraseFromEnvOrTerminal returns a PassphraseFunc that takes the
// passphrase from the environment variable envVar if it is set, and
// otherwise asks on the controlling terminal without echo. With neither it
// fails with ErrNoPassphrase: there is no built-in default secret
// (EN 303 645 5.4-3).
func PassphraseFromEnvOrTerminal(envVar string) PassphraseFunc {
	return passphraseSource{env: envVar, lookup: os.LookupEnv, tty: openTTY}.get
}

type passphraseSource struct {
	env    string
	lookup func(string) (string, bool)
	tty    func() (*os.File, error)
}

func (p passphraseSource) get(prompt string) ([]byte, error) {
	if p.env != "" {
		if v, ok := p.lookup(p.env); ok {
			return fromEnv(p.env, v)
		}
	}
	tty, err := p.tty()
	if err != nil {
		return nil, p.none()
	}
	defer tty.Close()
	return readNoEcho(tty, prompt)
}

func (p passphraseSource) none() error {
	if p.env == "" {
		return fmt.Errorf("%w: no terminal to ask on", ErrNoPassphrase)
	}
	return fmt.Errorf("%w: set %s or run on a terminal", ErrNoPassphrase, p.env)
}

func fromEnv(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("%w: %s is set but empty", ErrNoPassphrase, name)
	}
	if len(v) > maxPassphraseLen {
		return nil, fmt.Errorf("passphrase in %s longer than %d bytes", name, maxPassphraseLen)
	}
	return []byte(v), nil
}

// openTTY opens the controlling terminal rather than stdin, so the prompt
// works while stdin or stdout carry data (`koshin repo sign < metadata`).
func openTTY() (*os.File, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, fmt.Errorf("/dev/tty is not a terminal")
	}
	return f, nil
}

func readNoEcho(tty *os.File, prompt string) ([]byte, error) {
	if _, err := fmt.Fprint(tty, prompt); err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty) // the user's Enter was not echoed
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNoPassphrase)
	}
	if len(b) > maxPassphraseLen {
		clear(b)
		return nil, fmt.Errorf("passphrase longer than %d bytes", maxPassphraseLen)
	}
	return b, nil
}
