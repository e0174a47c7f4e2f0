package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestInstanceKey(t *testing.T) {
	dir := t.TempDir()
	a, err := instanceKey("", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := instanceKey("", dir)
	if err != nil || a != b {
		t.Fatalf("instance key not stable across restarts: %q then %q (%v)", a, b, err)
	}
	other, _ := instanceKey("", t.TempDir())
	if other == a {
		t.Fatal("two data dirs share an instance key")
	}
	pod1, _ := instanceKey("0f1e2d3c-aaaa-bbbb-cccc-1234567890ab", dir)
	pod2, _ := instanceKey("0f1e2d3c-aaaa-bbbb-cccc-1234567890ac", dir)
	if pod1 == pod2 || pod1 == a || len(pod1) != 16 {
		t.Fatalf("pod keys %q %q", pod1, pod2)
	}
	// A damaged file gets a fresh ID rather than stopping startup.
	if err := os.WriteFile(filepath.Join(dir, "instance-id"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := instanceKey("", dir); err != nil || c == a {
		t.Fatalf("damaged instance id: %q %v", c, err)
	}
}
