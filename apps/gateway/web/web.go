// Package web serves the gateway's board page: a small, dependency-free
// HTML and JavaScript client at GET / that connects to /ws and lets a person
// see and edit a board by hand, using only the public client protocol. All
// its files are embedded in the binary; nothing is fetched from elsewhere.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves static/index.html at / and the page's assets beside it
// (/app.js, /style.css). Only GET and HEAD are allowed; unknown paths are
// 404. Mount it at "/" of the gateway's mux, beside /ws and /healthz.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // cannot happen: the directory is embedded at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// The page edits boards: no other site may frame it (clickjacking).
		h.Set("Content-Security-Policy", "frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate, so a new build's page is picked up at once
		files.ServeHTTP(w, r)
	})
}
