package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/koshin-ota/koshin"
)

// query reads and validates URL query parameters. The first problem is
// kept and reported by err, so handlers parse everything and check once.
type query struct {
	v   url.Values
	err error
}

// maxQueryLen bounds a request's query string before it is parsed.
const maxQueryLen = 2048

func newQuery(r *http.Request) *query {
	q := &query{}
	if len(r.URL.RawQuery) > maxQueryLen {
		q.err = koshin.Errorf(koshin.EINVALID, "Query string must be at most %d bytes.", maxQueryLen)
		return q
	}
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		q.err = koshin.Errorf(koshin.EINVALID, "Query string is malformed.")
	}
	q.v = v
	return q
}

func (q *query) fail(format string, args ...any) {
	if q.err == nil {
		q.err = koshin.Errorf(koshin.EINVALID, format, args...)
	}
}

func (q *query) str(name string) string {
	if q.v == nil {
		return ""
	}
	return q.v.Get(name)
}

func (q *query) int(name string) int {
	s := q.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		q.fail("Parameter %s must be an integer.", name)
	}
	return n
}

func (q *query) int64(name string) int64 {
	s := q.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		q.fail("Parameter %s must be an integer.", name)
	}
	return n
}

func (q *query) bool(name string) bool {
	switch q.str(name) {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	}
	q.fail("Parameter %s must be true or false.", name)
	return false
}

func (q *query) time(name string) time.Time {
	s := q.str(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		q.fail("Parameter %s must be an RFC 3339 time.", name)
	}
	return t
}

// seqPage reads cursor, limit and order of an append-only list.
func (q *query) seqPage() koshin.SeqPage {
	return koshin.SeqPage{Cursor: q.int64("cursor"), Limit: q.int("limit"), Desc: q.str("order") == "desc"}
}

// pathID parses a numeric path segment.
func pathID(r *http.Request, name string) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || n < 1 {
		return 0, koshin.Errorf(koshin.EINVALID, "The %s in the path must be a positive integer.", name)
	}
	return n, nil
}

// list is the envelope of every list answer. Next is the cursor for the
// following page, empty on the last one.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// seqList builds a list paged by sequence numbers.
func seqList[T any](items []T, limit int, key func(T) int64) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	n, _ := koshin.Limit(limit)
	if len(items) == n && n > 0 {
		l.Next = strconv.FormatInt(key(items[len(items)-1]), 10)
	}
	return l
}

// keyList builds a list paged by string keys.
func keyList[T any](items []T, limit int, key func(T) string) list[T] {
	l := list[T]{Items: items}
	if l.Items == nil {
		l.Items = []T{}
	}
	n, _ := koshin.Limit(limit)
	if len(items) == n && n > 0 {
		l.Next = key(items[len(items)-1])
	}
	return l
}
