// Package release holds the tests of what the project ships besides its Go
// code: the release configuration (.goreleaser.yaml and its workflow), the
// GitHub Action (action.yml and scripts/action) and the container image
// (Dockerfile). They run in CI with the rest of `go test ./...`, on the fake
// Cloud Run, and publish nothing.
package release
