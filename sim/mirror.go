package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/koshin-ota/koshin/deviceapi"
)

// mirror is a rogue mirror on 127.0.0.1: a site cache that devices fetch
// payloads from, which pulls each payload from the origin once and serves
// it with one byte flipped. Mirrors need no trust in koshin, because the
// signed length and hashes travel in the metadata, not with the payload;
// this one exists to show that.
type mirror struct {
	origin string // the server's base URL
	client *http.Client
	ln     net.Listener
	srv    *http.Server

	mu       sync.Mutex
	files    map[string][]byte
	tampered map[string]bool // SHA-256 (hex) of every tampered payload served
}

// maxMirrored bounds one mirrored payload (the simulator's payloads are
// small; this is not a general cache).
const maxMirrored = 64 << 20

func startMirror(origin string, client *http.Client) (*mirror, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sim: rogue mirror: %w", err)
	}
	m := &mirror{origin: origin, client: client, ln: ln, files: map[string][]byte{}, tampered: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /targets/{file}", m.serve)
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go m.srv.Serve(ln)
	return m, nil
}

// URL is the mirror's base URL for payloads.
func (m *mirror) URL() string { return "http://" + m.ln.Addr().String() + "/targets" }

func (m *mirror) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m.srv.Shutdown(ctx)
}

func (m *mirror) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
		http.NotFound(w, r)
		return
	}
	data, err := m.get(r.Context(), name)
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// get returns the tampered copy of name, fetching it once.
func (m *mirror) get(ctx context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.files[name]; ok {
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.origin+deviceapi.PathTargets+name, nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("origin answered %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMirrored+1))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || len(b) > maxMirrored {
		return nil, errors.New("payload empty or too large to mirror")
	}
	b[len(b)/2] ^= 0x01
	sum := sha256.Sum256(b)
	m.files[name] = b
	m.tampered[hex.EncodeToString(sum[:])] = true
	return b, nil
}

// isTampered reports whether sha256 (hex) is a payload the mirror altered.
func (m *mirror) isTampered(sha string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tampered[sha]
}
