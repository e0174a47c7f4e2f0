package e2e

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// esServer is an Elasticsearch _bulk endpoint as far as skiff uses one:
// create actions with an _id; a create of an _id already stored answers
// 409 (version_conflict_engine_exception) and stores nothing, as
// Elasticsearch does. reject, when set, refuses the documents it matches
// with 400 (mapper_parsing_exception): skiff dead-letters those.
type esServer struct {
	srv    *httptest.Server
	reject func(msg string) bool

	mu        sync.Mutex
	docs      map[string]shipped // by _id
	conflicts int                // 409s answered
	rejected  int                // 400s answered
}

func newESServer(t testing.TB, reject func(string) bool) *esServer {
	s := &esServer{docs: map[string]shipped{}, reject: reject}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *esServer) serve(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/_bulk" {
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var items []string
	errors := false
	s.mu.Lock()
	defer s.mu.Unlock()
	for sc.Scan() {
		var action struct {
			Create *struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"create"`
		}
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || action.Create == nil || !sc.Scan() {
			http.Error(w, "malformed bulk body", http.StatusBadRequest)
			return
		}
		var doc shipped
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			http.Error(w, "malformed document", http.StatusBadRequest)
			return
		}
		id := action.Create.ID
		status, errPart := 201, ""
		switch _, dup := s.docs[id]; {
		case dup:
			status, errPart = 409, `,"error":{"type":"version_conflict_engine_exception","reason":"document already exists"}`
			s.conflicts++
		case s.reject != nil && s.reject(doc.Message):
			status, errPart = 400, `,"error":{"type":"mapper_parsing_exception","reason":"failed to parse"}`
			s.rejected++
		default:
			s.docs[id] = doc
		}
		errors = errors || status >= 300
		items = append(items, fmt.Sprintf(`{"create":{"_index":%q,"_id":%q,"status":%d%s}}`, action.Create.Index, id, status, errPart))
	}
	if sc.Err() != nil {
		http.Error(w, sc.Err().Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"took":1,"errors":%v,"items":[%s]}`, errors, strings.Join(items, ","))
}

// messages returns how many stored documents carry each message.
func (s *esServer) messages() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, d := range s.docs {
		m[d.Message]++
	}
	return m
}

// has reports whether every message in want is stored.
func (s *esServer) has(want ...string) bool {
	m := s.messages()
	for _, w := range want {
		if m[w] == 0 {
			return false
		}
	}
	return true
}

// docsWith returns the stored documents whose message starts with prefix.
func (s *esServer) docsWith(prefix string) []shipped {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []shipped
	for _, d := range s.docs {
		if strings.HasPrefix(d.Message, prefix) {
			out = append(out, d)
		}
	}
	return out
}

// esEnv runs skiff with one Elasticsearch sink, "es", pointing at s.
func esEnv(data string, s *esServer, paths ...string) map[string]string {
	env := baseEnv(data, paths...)
	env["SKIFF_SINKS"] = "es:http"
	env["SKIFF_ES_URL"] = s.srv.URL
	env["SKIFF_ES_FORMAT"] = "elasticsearch"
	env["SKIFF_ES_BACKOFF_MAX"] = "500ms"
	return env
}
