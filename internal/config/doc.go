// Package config reads skiff's configuration from SKIFF_* environment
// variables (through github.com/kelseyhightower/envconfig), validates all of
// it, and reports every problem at once rather than the first.
//
// The struct tags in this package are the single source of the variable
// reference: `skiff env` prints them and a test checks README's table
// against them.
package config
