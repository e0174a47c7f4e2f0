package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMETableMatchesReference keeps README's variable table generated
// from the same struct tags as `skiff env`. Regenerate it with
// `go run ./cmd/skiff env -markdown`.
func TestREADMETableMatchesReference(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- BEGIN ENV TABLE (go run ./cmd/skiff env -markdown) -->\n", "<!-- END ENV TABLE -->"
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q … %q", begin, end)
	}
	if got, want := s[i+len(begin):j], MarkdownTable(); got != want {
		t.Fatalf("README's variable table is stale; regenerate it with `go run ./cmd/skiff env -markdown`.\nwant:\n%s", want)
	}
}
