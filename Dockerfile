# runrollback as a container image, built from source: a static binary
# (CGO_ENABLED=0) on distroless/static, run as the unprivileged user 65532,
# with runrollback as the entrypoint. For a Cloud Build step, a Cloud Run Jobs
# drill (docs/cloud-run-jobs.md), or anywhere a container runs:
#
#   docker build -t runrollback .
#   docker run --rm runrollback test --local
#
# Releases publish the same image, built by GoReleaser from its own binaries
# with Dockerfile.release, as ghcr.io/runrollback/runrollback:vX.Y.Z.
# internal/release/docker_test.go checks both files.

# The Go of go.mod (major.minor); a newer patch is fine.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so that a source change reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# What --version prints: pass --build-arg VERSION=v0.3.0 --build-arg COMMIT=$(git rev-parse HEAD);
# without them it prints "(devel)".
ARG VERSION=""
ARG COMMIT=""
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/runrollback ./cmd/runrollback

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no shell.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/runrollback /runrollback
USER 65532:65532
ENTRYPOINT ["/runrollback"]
