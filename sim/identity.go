package sim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/koshin-ota/koshin"
)

// Identity is a simulated device's identity: what a factory would
// provision and list for pre-authorisation.
type Identity struct {
	Serial string
	Key    ed25519.PrivateKey
	// ID is the device ID the server derives from the key (hex SHA-256 of
	// its PKIX encoding).
	ID string
	// PublicKeyDER is the key's PKIX encoding.
	PublicKeyDER []byte
}

// DeviceIdentity derives device i's identity from the fleet seed. The key
// is as secret as the seed: fine for a simulator, never for real devices,
// whose keys are generated on the device.
func DeviceIdentity(seed, serialPrefix string, i int) Identity {
	mac := hmac.New(sha256.New, []byte(seed))
	fmt.Fprintf(mac, "koshin sim device key %d", i)
	key := ed25519.NewKeyFromSeed(mac.Sum(nil))
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		panic(err) // an Ed25519 public key always marshals
	}
	return Identity{Serial: fmt.Sprintf("%s-%06d", serialPrefix, i), Key: key, ID: koshin.DeviceID(der), PublicKeyDER: der}
}

// NewSeed returns a random seed for a fleet.
func NewSeed() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PreauthCSV is the factory pre-authorisation list of devices [from, to)
// of the fleet with seed and serialPrefix, in the CSV form the server's
// upload takes (`koshin device preauthorize --csv`), every device in
// group (may be empty) with tags.
func PreauthCSV(seed, serialPrefix, hardwareID, group string, tags []string, from, to int) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"serial", "hardware_id", "public_key", "group", "tags"})
	for i := from; i < to; i++ {
		id := DeviceIdentity(seed, serialPrefix, i)
		w.Write([]string{id.Serial, hardwareID, base64.StdEncoding.EncodeToString(id.PublicKeyDER), group, strings.Join(tags, ";")})
	}
	w.Flush()
	return buf.Bytes()
}

// csr is a PEM certificate request signed by the device key.
func (id *Identity) csr() (string, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, id.Key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}
