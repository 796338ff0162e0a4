package keys

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestPassphraseNeitherEnvNorTerminal: with no variable and no terminal
// there is no passphrase, and never a default one (EN 303 645 5.4-3).
func TestPassphraseNeitherEnvNorTerminal(t *testing.T) {
	src := passphraseSource{
		env:    "KOSHIN_TEST_UNSET",
		lookup: func(string) (string, bool) { return "", false },
		tty:    func() (*os.File, error) { return nil, errors.New("no tty") },
	}
	got, err := src.get("prompt: ")
	if !errors.Is(err, ErrNoPassphrase) || got != nil {
		t.Fatalf("get = %q, %v; want ErrNoPassphrase", got, err)
	}
	if !strings.Contains(err.Error(), "KOSHIN_TEST_UNSET") {
		t.Fatalf("error %q does not name the variable to set", err)
	}
}

func TestPassphraseEnvTooLong(t *testing.T) {
	src := passphraseSource{
		env:    "P",
		lookup: func(string) (string, bool) { return strings.Repeat("x", maxPassphraseLen+1), true },
		tty:    func() (*os.File, error) { t.Fatal("terminal asked despite the variable"); return nil, nil },
	}
	if _, err := src.get(""); err == nil {
		t.Fatal("accepted an oversized passphrase")
	}
}
