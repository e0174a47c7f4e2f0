// Package deploy holds no code: its tests check skiff's deployment examples
// (deploy/kubernetes, deploy/compose, the Dockerfile and .dockerignore at
// the repository root) with the official parsers and loaders of each
// format and with skiff's own configuration validation, and assemble the
// image with buildah where it is installed.
//
// It is a separate Go module so that k8s.io/api, kustomize, compose-go and
// buildkit never enter skiff's own module graph. Run its tests with
//
//	cd deploy && go test -race ./...
package deploy
