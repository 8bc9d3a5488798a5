package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// static holds the status page and its vendored Leaflet and
// Leaflet.markercluster.
//
// static/vendor/leaflet holds leaflet.js, leaflet.css, images/ and LICENSE
// copied unchanged from dist/ of the npm package leaflet@1.9.4 (tarball
// integrity sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==).
// To update: `npm pack leaflet@X.Y.Z` in a temporary directory, check the
// integrity against `npm view leaflet@X.Y.Z dist.integrity`, and copy the
// same files over.
//
// static/vendor/leaflet.markercluster holds leaflet.markercluster.js,
// MarkerCluster.css and MarkerCluster.Default.css from dist/, and
// MIT-LICENCE.txt as LICENSE, unchanged from the npm package
// leaflet.markercluster@1.5.3 (tarball integrity
// sha512-vPTw/Bndq7eQHjLBVlWpnGeLa3t+3zGiuM7fJwCkiMFq+nmRuG3RI3f7f4N4TDX7T4NpbAXpR2+NTRSEGfCSeA==),
// updated the same way.
//
//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	etag        string
	contentType string
}

// assets maps a path below static/ to its file. Built once because the
// files never change while the binary runs, so their ETags need not be
// recomputed per request.
var assets = sync.OnceValue(func() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		m[strings.TrimPrefix(p, "static/")] = asset{
			body:        body,
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
			contentType: contentType(p),
		}
		return nil
	})
	if err != nil {
		// The embedded tree is fixed at build time, so this is a broken build.
		panic("web: read embedded files: " + err.Error())
	}
	return m
})

// contentType is fixed here rather than taken from the mime package, which
// reads the system's mime.types and could serve JavaScript under another
// type (nosniff makes the browser refuse a script of the wrong type).
func contentType(name string) string {
	switch path.Ext(name) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".png":
		return "image/png"
	case ".svg":
		return "image/svg+xml"
	default:
		return "text/plain; charset=utf-8"
	}
}

// serveStatic serves the embedded file named by the request path (with
// /static/ already stripped). Directories are not listed.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	serveAsset(r.URL.Path)(w, r)
}

// serveAsset returns a handler serving the embedded file static/name.
// Cache-Control: no-cache makes browsers revalidate with the ETag, so an
// upgraded binary never runs with a stale script while unchanged files cost
// a 304.
func serveAsset(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := assets()[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	}
}
