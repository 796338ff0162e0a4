package anomaly

import "time"

// key names one time series: a signal in a scope.
type key struct {
	signal Signal
	scope  Scope
}

// series counts one signal in one scope per bucket. Buckets are numbered
// by absolute time (Unix time / bucket length) and kept sparse: most
// series are empty most of the time.
type series struct {
	buckets map[int64]int
}

func (s *series) add(b int64, n int) {
	if s.buckets == nil {
		s.buckets = map[int64]int{}
	}
	s.buckets[b] += n
}

// sum counts buckets in (from, to].
func (s *series) sum(from, to int64) int {
	n := 0
	for b, c := range s.buckets {
		if b > from && b <= to {
			n += c
		}
	}
	return n
}

// prune drops buckets at or before oldest and reports whether any remain.
func (s *series) prune(oldest int64) bool {
	for b := range s.buckets {
		if b <= oldest {
			delete(s.buckets, b)
		}
	}
	return len(s.buckets) > 0
}

// reading is a series judged at one bucket.
type reading struct {
	count    int     // in the window ending with the bucket
	baseline float64 // average count per window over the baseline before it
	limit    int     // count that raises an alert
}

// read judges s at bucket now.
func (c Config) read(s *series, now int64, t Threshold) reading {
	w := c.windowBuckets()
	r := reading{count: s.sum(now-w, now)}
	r.baseline = float64(s.sum(now-w-c.baselineBuckets(), now-w)) / float64(c.baselineWindows())
	r.limit = t.limit(r.baseline)
	return r
}

// bucketOf numbers the bucket holding t.
func (c Config) bucketOf(t time.Time) int64 {
	return t.UnixNano() / int64(c.Bucket)
}
