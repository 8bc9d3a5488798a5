package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// vehicleCache holds /api/vehicles encoded, and encodes it again only when
// the source says the list changed. With a hundred thousand vehicles the
// list is 16 MB of JSON that takes a good part of a second to build; built
// per request, sixteen requests at once took a gigabyte.
type vehicleCache struct {
	src  Source
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // held by the one request that builds
}

func newVehicleCache(src Source) *vehicleCache { return &vehicleCache{src: src} }

// rebuildAfter: a list that changed is built again only once the last
// build has been served for rebuildAfter times as long as it took to
// build, so that building never takes more than a fifth of the time, however
// often positions come and however many ask. A list that builds in less
// than cheapBuild (a few thousand vehicles) is always built anew on a
// change: nobody should wait for that.
const (
	rebuildAfter = 4
	cheapBuild   = 10 * time.Millisecond
)

// get returns the current list: the one built last if nothing changed
// since, or if it is not yet due; otherwise it builds it. While one
// request builds, the others are served the previous list instead of
// waiting in line.
func (c *vehicleCache) get() *snapshot {
	cur := c.snap.Load()
	if cur != nil && (cur.version == c.src.VehiclesVersion() || !cur.due()) {
		return cur
	}
	if cur == nil {
		c.mu.Lock()
	} else if !c.mu.TryLock() {
		return cur
	}
	defer c.mu.Unlock()
	if now := c.snap.Load(); now != cur {
		return now // built while this request waited
	}
	start := time.Now()
	// The version is read before the list, so a change between the two
	// is seen as a change the next time.
	version := c.src.VehiclesVersion()
	sn := buildSnapshot(version, c.src.Vehicles())
	sn.built = time.Now()
	sn.cost = sn.built.Sub(start)
	c.snap.Store(sn)
	return sn
}

// snapshot is the vehicle list at one moment, encoded once: the whole JSON
// array, where each vehicle's object lies, and the positions to pick a
// bounding box with.
type snapshot struct {
	version uint64
	built   time.Time
	cost    time.Duration

	body []byte // the JSON array of every vehicle, ending in a newline
	etag string
	// off[i] is where vehicle i's object starts in body; it ends one byte
	// (a comma or the closing bracket) before off[i+1].
	off      []int
	lat, lng []float64 // NaN when the vehicle has no position

	gzipped func() []byte // body compressed, made on first use
}

func (sn *snapshot) due() bool {
	return sn.cost < cheapBuild || time.Since(sn.built) >= rebuildAfter*sn.cost
}

func (sn *snapshot) len() int { return len(sn.lat) }

// object returns the JSON object of vehicles from to to-1, with the commas
// between them.
func (sn *snapshot) objects(from, to int) []byte {
	if from >= to {
		return nil
	}
	return sn.body[sn.off[from] : sn.off[to]-1]
}

// buildSnapshot encodes vs sorted by id, each vehicle once.
func buildSnapshot(version uint64, vs []Vehicle) *snapshot {
	vs = sortedVehicles(vs)
	n := len(vs)
	sn := &snapshot{version: version, off: make([]int, n+1), lat: make([]float64, n), lng: make([]float64, n)}
	var buf bytes.Buffer
	buf.Grow(64 + 180*n)
	buf.WriteByte('[')
	enc := json.NewEncoder(&buf) // escapes <, > and & like json.Marshal
	for i := range vs {
		v := &vs[i]
		sn.off[i] = buf.Len()
		if err := enc.Encode(v); err != nil {
			// Only a fix time beyond year 9999 cannot be encoded; the
			// vehicle is still worth showing without it.
			buf.Truncate(sn.off[i])
			v.Time = nil
			_ = enc.Encode(v)
		}
		buf.Bytes()[buf.Len()-1] = ',' // in place of Encode's newline
		sn.lat[i], sn.lng[i] = math.NaN(), math.NaN()
		if v.Lat != nil && v.Lng != nil {
			sn.lat[i], sn.lng[i] = *v.Lat, *v.Lng
		}
	}
	sn.off[n] = buf.Len()
	body := buf.Bytes()
	if n > 0 {
		body = body[:len(body)-1] // the last comma
	}
	sn.body = append(body, ']', '\n')
	sum := sha256.Sum256(sn.body)
	sn.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
	sn.gzipped = sync.OnceValue(func() []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed) // the level is valid
		_, _ = zw.Write(sn.body)
		_ = zw.Close()
		return b.Bytes()
	})
	return sn
}

// vehicleQuery is what a request of /api/vehicles asks for.
type vehicleQuery struct {
	box           *bbox
	offset, limit int // limit < 0: no limit
}

// whole reports whether the query asks for the whole list.
func (q vehicleQuery) whole() bool { return q.box == nil && q.offset == 0 && q.limit < 0 }

// bbox is a bounding box in WGS-84 degrees. A box whose west edge is east
// of its east edge crosses the antimeridian, as in GeoJSON (RFC 7946).
type bbox struct{ west, south, east, north float64 }

func (b *bbox) contains(lat, lng float64) bool {
	if !(lat >= b.south && lat <= b.north) { // false for NaN too
		return false
	}
	if b.west <= b.east {
		return lng >= b.west && lng <= b.east
	}
	return lng >= b.west || lng <= b.east
}

// parseVehicleQuery reads bbox, offset and limit. Any other parameter is
// an error rather than ignored: a misspelt bbox would otherwise return the
// whole fleet.
func parseVehicleQuery(v url.Values) (vehicleQuery, error) {
	q := vehicleQuery{limit: -1}
	for name, values := range v {
		if len(values) != 1 {
			return q, fmt.Errorf("%s is given %d times", name, len(values))
		}
		value := values[0]
		switch name {
		case "bbox":
			b, err := parseBBox(value)
			if err != nil {
				return q, fmt.Errorf("bbox=%q: %w", value, err)
			}
			q.box = b
		case "offset":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return q, fmt.Errorf("offset=%q: want a whole number, 0 or more", value)
			}
			q.offset = n
		case "limit":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return q, fmt.Errorf("limit=%q: want a whole number, 1 or more", value)
			}
			q.limit = n
		default:
			return q, fmt.Errorf("unknown parameter %q (want bbox, offset or limit)", name)
		}
	}
	return q, nil
}

func parseBBox(s string) (*bbox, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return nil, fmt.Errorf("want minLng,minLat,maxLng,maxLat")
	}
	var f [4]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%q is not a number", p)
		}
		f[i] = x
	}
	b := &bbox{west: f[0], south: f[1], east: f[2], north: f[3]}
	switch {
	case b.west < -180 || b.west > 180 || b.east < -180 || b.east > 180:
		return nil, fmt.Errorf("longitudes must be within -180 and 180")
	case b.south < -90 || b.north > 90:
		return nil, fmt.Errorf("latitudes must be within -90 and 90")
	case b.south > b.north:
		return nil, fmt.Errorf("minLat is north of maxLat")
	}
	return b, nil
}

// selection is the part of a snapshot a query picks: the vehicles from
// to to-1, or those listed in idx when the query has a bounding box.
type selection struct {
	from, to int
	idx      []int
	total    int // vehicles that match before paging
}

func (sn *snapshot) pick(q vehicleQuery) selection {
	var sel selection
	n := sn.len()
	if q.box != nil {
		for i := range n {
			if q.box.contains(sn.lat[i], sn.lng[i]) {
				sel.idx = append(sel.idx, i)
			}
		}
		n = len(sel.idx)
	}
	sel.total = n
	sel.from = min(q.offset, n)
	sel.to = n
	if q.limit >= 0 {
		sel.to = min(sel.from+q.limit, n)
	}
	if sel.idx != nil {
		sel.idx = sel.idx[sel.from:sel.to]
	}
	return sel
}

// size is the number of bytes of the selected objects.
func (sn *snapshot) size(sel selection) int {
	if sel.idx == nil {
		return len(sn.objects(sel.from, sel.to))
	}
	total := 0
	for _, i := range sel.idx {
		total += sn.off[i+1] - sn.off[i]
	}
	return total
}

// write writes the selected vehicles as a JSON array.
func (sn *snapshot) write(w io.Writer, sel selection) error {
	if sel.idx == nil {
		objs := sn.objects(sel.from, sel.to)
		if _, err := io.WriteString(w, "["); err != nil {
			return err
		}
		if _, err := w.Write(objs); err != nil {
			return err
		}
		_, err := io.WriteString(w, "]\n")
		return err
	}
	bw := bufWriters.Get().(*bufio.Writer)
	defer bufWriters.Put(bw)
	bw.Reset(w)
	defer bw.Reset(nil)
	bw.WriteByte('[')
	for k, i := range sel.idx {
		if k > 0 {
			bw.WriteByte(',')
		}
		bw.Write(sn.objects(i, i+1))
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

var (
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
	gzWriters  = sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // the level is valid
		return zw
	}}
)

// minGzip is the size below which a response is not worth compressing.
const minGzip = 1024

// vehicles serves /api/vehicles: the whole list, or with ?bbox= the
// vehicles in a box, and with ?offset=&limit= a page of either. The number
// of vehicles the request matches before paging is in X-Total-Count.
func (s *Server) vehicles(w http.ResponseWriter, r *http.Request) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "exlive2mqtt: too many requests for /api/vehicles at once; retry in a second", http.StatusServiceUnavailable)
		return
	}
	values, err := url.ParseQuery(r.URL.RawQuery)
	q := vehicleQuery{}
	if err == nil {
		q, err = parseVehicleQuery(values)
	}
	if err != nil {
		http.Error(w, "exlive2mqtt: /api/vehicles: "+err.Error()+" (docs/operations.md#api)", http.StatusBadRequest)
		return
	}
	sn := s.vehicleList.get()
	sel := sn.pick(q)
	etag := sn.etag
	if !q.whole() {
		etag = queryETag(sn.etag, q)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	h.Set("ETag", etag)
	h.Set("X-Total-Count", strconv.Itoa(sel.total))
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	if q.whole() {
		body := sn.body
		if gz && len(body) >= minGzip {
			body = sn.gzipped()
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
		return
	}
	if !gz || sn.size(sel) < minGzip {
		_ = sn.write(w, sel)
		return
	}
	h.Set("Content-Encoding", "gzip")
	zw := gzWriters.Get().(*gzip.Writer)
	defer gzWriters.Put(zw)
	zw.Reset(w)
	if sn.write(zw, sel) == nil {
		_ = zw.Close()
	}
	zw.Reset(io.Discard) // let go of w
}

// queryETag is the ETag of a part of the list: the list's own, marked with
// what the query picked.
func queryETag(listETag string, q vehicleQuery) string {
	f := fnv.New64a()
	if q.box != nil {
		fmt.Fprintf(f, "bbox=%g,%g,%g,%g;", q.box.west, q.box.south, q.box.east, q.box.north)
	}
	fmt.Fprintf(f, "offset=%d;limit=%d", q.offset, q.limit)
	return strings.TrimSuffix(listETag, `"`) + "-" + strconv.FormatUint(f.Sum64(), 16) + `"`
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 wants for it).
func etagMatches(header, etag string) bool {
	for t := range strings.SplitSeq(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header takes gzip (and
// does not refuse it with q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "q") {
				if q, err := strconv.ParseFloat(v, 64); err == nil && q == 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}
