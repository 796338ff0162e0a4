package keys_test

import (
	"errors"
	"testing"

	"github.com/koshin-ota/koshin/trust/keys"
)

func TestPassphraseFromEnv(t *testing.T) {
	t.Setenv("KOSHIN_TEST_PASSPHRASE", "from the environment")
	got, err := keys.PassphraseFromEnvOrTerminal("KOSHIN_TEST_PASSPHRASE")("ignored prompt: ")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "from the environment" {
		t.Fatalf("passphrase = %q", got)
	}
}

// TestPassphraseEnvSetButEmpty: an empty variable is a mistake to report,
// not a passphrase and not a reason to fall back to a prompt.
func TestPassphraseEnvSetButEmpty(t *testing.T) {
	t.Setenv("KOSHIN_TEST_PASSPHRASE", "")
	_, err := keys.PassphraseFromEnvOrTerminal("KOSHIN_TEST_PASSPHRASE")("prompt: ")
	if !errors.Is(err, keys.ErrNoPassphrase) {
		t.Fatalf("error = %v, want ErrNoPassphrase", err)
	}
}
