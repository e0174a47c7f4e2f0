# syntax=docker/dockerfile:1
#
# skiff's image: a static Go binary on distroless static:nonroot.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t skiff .
#   docker build --target loggen -t skiff-loggen .   # the demo log generator
#
# The image runs as uid/gid 65532 with no shell and works with a read-only
# root filesystem: all state is in SKIFF_DATA_DIR (/var/lib/skiff), which
# must be a writable volume. The last stage is the default target.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (CGO_ENABLED=0), reproducible (-trimpath, no VCS stamp, no build
# ID) and version-stamped; skiff version prints VERSION.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -buildid= -X main.version=${VERSION}" \
        -o /out/skiff ./cmd/skiff && \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w -buildid=" \
        -o /out/loggen ./cmd/loggen
# Mount points owned by the runtime user: Docker seeds a new named volume
# from the image's directory, ownership included, so compose volumes
# mounted here are writable by uid 65532. (Kubernetes emptyDirs are.)
RUN mkdir -p /out/var/lib/skiff /out/var/log/app

# The demo application for deploy/compose and the Kubernetes examples.
FROM gcr.io/distroless/static-debian12:nonroot AS loggen
COPY --from=build /out/loggen /loggen
COPY --from=build --chown=65532:65532 /out/var/log/app /var/log/app
USER 65532:65532
ENTRYPOINT ["/loggen"]

FROM gcr.io/distroless/static-debian12:nonroot AS skiff
COPY --from=build /out/skiff /skiff
COPY --from=build --chown=65532:65532 /out/var/lib/skiff /var/lib/skiff
COPY --from=build --chown=65532:65532 /out/var/log/app /var/log/app
USER 65532:65532
# /metrics, /healthz, /readyz and /status (SKIFF_METRICS_ADDR).
EXPOSE 9477
ENTRYPOINT ["/skiff"]
