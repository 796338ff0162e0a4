package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/koshin-ota/koshin"
)

func TestKeyedLimiter(t *testing.T) {
	l := newKeyedLimiter(2, 3) // 2/s, burst 3
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.allow("a", now); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := l.allow("a", now)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th: %v %v, want refused for 500ms", ok, wait)
	}
	if ok, _ := l.allow("b", now); !ok {
		t.Fatal("another key shares the bucket")
	}
	if ok, _ := l.allow("a", now.Add(500*time.Millisecond)); !ok {
		t.Fatal("token not refilled after the announced wait")
	}
}

// TestKeyedLimiterBounded: a flood of distinct keys cannot grow the
// limiter without bound.
func TestKeyedLimiterBounded(t *testing.T) {
	l := newKeyedLimiter(1, 1)
	now := time.Unix(0, 0)
	for i := range limiterShards * maxBucketsShard * 2 {
		l.allow(strconv.Itoa(i), now)
	}
	total := 0
	for i := range l.shards {
		total += len(l.shards[i].m)
	}
	if total > limiterShards*maxBucketsShard {
		t.Fatalf("%d buckets", total)
	}
}

func TestSourceKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:5555":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":   "2001:db8:1:2::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7",
		"not-an-address":             "not-an-address",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		r.Header.Set("X-Forwarded-For", "203.0.113.9")
		if got := sourceKey(r); got != want {
			t.Errorf("sourceKey(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", 1500 * time.Millisecond: "2", 8 * time.Second: "8"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("%v: %s, want %s", d, got, want)
		}
	}
}

func TestDecodeStrictMessages(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
	}
	for in, want := range map[string]string{
		`{"name":`:                               "incomplete",
		`{"name" 1}`:                             "not valid JSON",
		``:                                       "empty",
		`{"name":"a"} {}`:                        "exactly one JSON value",
		`{"n":"x"}`:                              `Field "n" must be a number`,
		`{"name":1}`:                             `Field "name" must be a string`,
		`{"extra":1}`:                            `Unknown field "extra"`,
		`{"` + strings.Repeat("z", 300) + `":1}`: "…",
	} {
		var b body
		err := decodeStrict([]byte(in), &b)
		if koshin.ErrorCode(err) != koshin.EINVALID || !strings.Contains(koshin.ErrorMessage(err), want) {
			t.Errorf("%.30q: %v, want message with %q", in, err, want)
		}
	}
}

func TestParsePreauthCSV(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	k := base64.StdEncoding.EncodeToString(der)
	ps, err := parsePreauthCSV([]byte("Tags, public_key ,serial,hardware_id,group\nz;a;z," + k + ",SN-1,board-a,plant-7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p := ps[0]; p.Serial != "SN-1" || p.HardwareID != "board-a" || p.Group != "plant-7" || strings.Join(p.Tags, ",") != "a,z" {
		t.Fatalf("%+v", p)
	}
	for name, in := range map[string]string{
		"line number": "serial,hardware_id,public_key\nSN-1,board-a," + k + "\nSN 2,board-a," + k + "\n",
		"missing col": "serial,public_key\nSN-1," + k + "\n",
		"dup col":     "serial,serial,hardware_id,public_key\n",
	} {
		_, err := parsePreauthCSV([]byte(in))
		if koshin.ErrorCode(err) != koshin.EINVALID {
			t.Errorf("%s: %v", name, err)
		}
		if name == "line number" && !strings.Contains(koshin.ErrorMessage(err), "line 3") {
			t.Errorf("error does not name the line: %v", err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"poll too short":   func(c *Config) { c.PollInterval = time.Second },
		"jitter too large": func(c *Config) { c.PollJitter = 2 * c.PollInterval },
		"no free attempts": func(c *Config) { c.Lockout.FreeAttempts = 0 },
		"negative rate":    func(c *Config) { c.DeviceRate = -1 },
		"expiry too long":  func(c *Config) { c.DirectorExpiry = 365 * 24 * time.Hour },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
