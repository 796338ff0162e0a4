package compliance

import _ "embed"

//go:embed profile_template.yaml
var profileTemplate []byte

// ProfileTemplate returns the documented profile that `koshin compliance
// init` writes. It deliberately fails LoadProfile until the manufacturer
// has replaced every Placeholder and answered every yes/no question.
func ProfileTemplate() []byte { return append([]byte(nil), profileTemplate...) }
