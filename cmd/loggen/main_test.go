package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/loggen"
)

func TestRunWritesVerifiableFiles(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	args := []string{"-out", filepath.Join(dir, "app.log"), "-streams", "2", "-id", "demo", "-format", "json",
		"-rate", "0", "-lines", "3000", "-size", "150", "-rotate-bytes", "100KiB", "-keep", "10"}
	if code := run(args, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"loggen: stream=demo0 path=" + filepath.Join(dir, "app-0.log") + " lines=3000 bytes=453000 rotations=4",
		"loggen: stream=demo1 path=" + filepath.Join(dir, "app-1.log") + " lines=3000"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr.String())
		}
	}
	c := loggen.NewChecker()
	files, _ := filepath.Glob(filepath.Join(dir, "app-*.log*"))
	if len(files) != 10 {
		t.Errorf("files %v, want 2 live + 8 rotated", files)
	}
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			c.Add(sc.Bytes())
		}
		f.Close()
	}
	if err := c.Verify(map[string]uint64{"demo0": 3000, "demo1": 3000}, false); err != nil {
		t.Fatal(err)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"format":       {[]string{"-format", "xml"}, `format "xml"`},
		"size":         {[]string{"-rotate-bytes", "lots"}, "-rotate-bytes"},
		"mode":         {[]string{"-rotate-mode", "move"}, `rotation mode "move"`},
		"streams":      {[]string{"-streams", "0"}, "need at least 1"},
		"stdout multi": {[]string{"-streams", "2"}, "only one stream"},
		"stray arg":    {[]string{"x"}, "unexpected arguments"},
		"bad id":       {[]string{"-id", "a b", "-out", "/tmp/x"}, "stream id"},
		"unknown flag": {[]string{"-nope"}, "flag provided but not defined"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}

func TestStreamPath(t *testing.T) {
	tests := map[string]struct {
		out     string
		streams int
		i       int
		want    string
	}{
		"single":         {"/l/app.log", 1, 0, "/l/app.log"},
		"insert":         {"/l/app.log", 3, 2, "/l/app-2.log"},
		"no ext":         {"/l/app", 2, 1, "/l/app-1"},
		"placeholder":    {"/l/{n}/x.log", 2, 1, "/l/1/x.log"},
		"single {n}":     {"/l/app-{n}.log", 1, 0, "/l/app-0.log"},
		"stdout":         {"-", 1, 0, "-"},
		"dotted dir ext": {"/l.d/app.json", 2, 0, "/l.d/app-0.json"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := streamPath(tc.out, tc.streams, tc.i); got != tc.want {
				t.Fatalf("streamPath = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSIGTERMFlushes runs loggen as a process, stops it with SIGTERM
// mid-stream and checks that it exits 0 having flushed whole lines only,
// exactly as many as its summary reports.
func TestSIGTERMFlushes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "loggen")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "app.log")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-out", path, "-rate", "2000", "-size", "300", "-buffer-bytes", "65536")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait (generously) until lines reach the file, then stop it.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 10000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no lines after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatal("the file does not end with a whole line")
	}
	n := uint64(bytes.Count(b, []byte("\n")))
	if want := fmt.Sprintf("lines=%d bytes=%d ", n, len(b)); !strings.Contains(stderr.String(), want) {
		t.Errorf("summary %q lacks %q", stderr.String(), want)
	}
	c := loggen.NewChecker()
	for _, l := range bytes.Split(b[:len(b)-1], []byte("\n")) {
		c.Add(l)
	}
	if err := c.Verify(map[string]uint64{"s0": n}, false); err != nil {
		t.Fatal(err)
	}
}
