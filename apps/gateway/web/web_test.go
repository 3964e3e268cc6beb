package web

import (
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndex(t *testing.T) {
	h := Handler()
	r := get(t, h, http.MethodGet, "/")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", r.StatusCode)
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "text/html" {
		t.Fatalf("GET / Content-Type %q", r.Header.Get("Content-Type"))
	}
	if r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatal("no nosniff header")
	}
	if r.Header.Get("Content-Security-Policy") != "frame-ancestors 'none'" || r.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("the page may be framed: %v", r.Header)
	}
	page := body(t, r)
	if !strings.Contains(page, "<title>Tavern board</title>") {
		t.Fatalf("GET / is not the board page:\n%s", page)
	}
	// The element ids that browser tests rely on.
	for _, id := range []string{"user", "token", "board", "connect", "status", "node", "svg", "add-asset", "add",
		"delete", "chat-text", "chat-send", "dice", "roll", "log", "presence"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("index.html has no element with id %q", id)
		}
	}
}

var refAttr = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']([^"']*)["']`)

// TestAssets fetches everything index.html references.
func TestAssets(t *testing.T) {
	h := Handler()
	page := body(t, get(t, h, http.MethodGet, "/"))
	refs := refAttr.FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d assets, want at least app.js and style.css", len(refs))
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
	for _, m := range refs {
		ref := m[1]
		if strings.Contains(ref, "//") || strings.Contains(ref, ":") {
			t.Errorf("index.html references %q: not one of our files", ref)
			continue
		}
		target := "/" + strings.TrimPrefix(ref, "/")
		r := get(t, h, http.MethodGet, target)
		if r.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d", target, r.StatusCode)
			continue
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if want, ok := wantType[path.Ext(target)]; ok && ct != want {
			t.Errorf("GET %s Content-Type %q, want %s", target, ct, want)
		}
	}
	if js := body(t, get(t, h, http.MethodGet, "/app.js")); !strings.Contains(js, "window.tavern") {
		t.Error("app.js does not expose window.tavern")
	}
}

func TestMethodsAndMissing(t *testing.T) {
	h := Handler()
	if r := get(t, h, http.MethodPost, "/"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
	}
	if r := get(t, h, http.MethodHead, "/"); r.StatusCode != http.StatusOK {
		t.Errorf("HEAD / = %d", r.StatusCode)
	}
	if r := get(t, h, http.MethodGet, "/nope.js"); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js = %d", r.StatusCode)
	}
	if r := get(t, h, http.MethodGet, "/static/app.js"); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/app.js = %d: the embed directory leaks", r.StatusCode)
	}
}

var (
	htmlComment  = regexp.MustCompile(`(?s)<!--.*?-->`)
	blockComment = regexp.MustCompile(`(?s)/\*.*?\*/`)
	// a // comment, unless the // follows ':' as in "ws://" or a backslash
	lineComment = regexp.MustCompile(`(?m)(^|[^:\\])//.*$`)
)

// TestNoExternalURLs checks that the page loads nothing from elsewhere: no
// http:// or https:// outside comments in any served file.
func TestNoExternalURLs(t *testing.T) {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		text := string(b)
		switch path.Ext(name) {
		case ".html":
			text = htmlComment.ReplaceAllString(text, "")
		case ".css":
			text = blockComment.ReplaceAllString(text, "")
		case ".js":
			text = lineComment.ReplaceAllString(blockComment.ReplaceAllString(text, ""), "$1")
		}
		for _, scheme := range []string{"http://", "https://"} {
			if i := strings.Index(strings.ToLower(text), scheme); i >= 0 {
				t.Errorf("%s references an external URL: %q", name, text[i:min(len(text), i+60)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("walked %d files", n)
	}
}

// TestCommentStripping makes sure the stripping above removes comments
// only.
func TestCommentStripping(t *testing.T) {
	js := "const u = 'ws://' + host; // see https://example.com\n/* https://x */ let a = 1;"
	got := lineComment.ReplaceAllString(blockComment.ReplaceAllString(js, ""), "$1")
	if strings.Contains(got, "https://") || !strings.Contains(got, "'ws://'") || !strings.Contains(got, "let a = 1;") {
		t.Fatalf("stripped to %q", got)
	}
}
