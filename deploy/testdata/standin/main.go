// Command standin stands in for cmd/skiff in the image test while cmd/skiff
// cannot be built on a branch that lacks some of its packages. It answers
// `version` the way skiff does.
package main

import (
	"fmt"
	"os"
)

var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Printf("skiff %s\n", version)
		return
	}
	os.Exit(2)
}
