//go:build !linux

package buffer

import "testing"

func dropCache(b *testing.B, _ []string) { b.Skip("needs fadvise") }
