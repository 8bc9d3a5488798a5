# syntax=docker/dockerfile:1

# Two images from one build:
#   docker build -t exlive2mqtt .                       the bridge (default target)
#   docker build --target exlive-sim -t exlive-sim .    the simulated platform (compose demo profile)
# Stamp a release with --build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD).
#
# The simulator gets an image of its own, rather than riding along in the
# bridge's image under another entrypoint, so that each image carries only
# its program and its own EXPOSE and HEALTHCHECK: the bridge's health check
# would mark a simulator container unhealthy, and production images have no
# use for a fake platform. Both come out of the same build stage, so building
# both costs one compile.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# Static binaries (no cgo), without local paths; the version is what
# `exlive2mqtt version` and the exlive2mqtt_build_info metric report.
# .ci/check-deploy.sh runs this same go build, so keep the two in step.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/ ./cmd/exlive2mqtt ./cmd/exlive-sim \
    && mkdir /out/data

# distroless/static: CA certificates, /etc/passwd with nonroot (65532), no
# shell. Time zones need nothing from the image: the binary embeds them.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.source="https://github.com/exlive2mqtt/exlive2mqtt" \
      org.opencontainers.image.url="https://github.com/exlive2mqtt/exlive2mqtt" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"
USER 65532:65532

FROM runtime AS exlive-sim
LABEL org.opencontainers.image.title="exlive-sim" \
      org.opencontainers.image.description="A simulated EXLIVE vehicle-tracking platform (TCP JSON, port 1502) for trying exlive2mqtt without an account"
COPY --from=build /out/exlive-sim /usr/local/bin/exlive-sim
EXPOSE 1502
ENTRYPOINT ["/usr/local/bin/exlive-sim"]

# The default target comes last.
FROM runtime AS exlive2mqtt
LABEL org.opencontainers.image.title="exlive2mqtt" \
      org.opencontainers.image.description="Bridges the EXLIVE vehicle-tracking platform (TCP JSON) to MQTT"
COPY --from=build /out/exlive2mqtt /usr/local/bin/exlive2mqtt
# /data is owned by the runtime user so that a volume mounted there (for
# MQTT_STORE_DIR) is writable: Docker copies the ownership into a new volume.
COPY --from=build --chown=65532:65532 /out/data /data
# The binary listens on loopback only unless told otherwise; in a container
# that is the container's own loopback, which nothing outside can reach, so
# the image listens on every interface of its network namespace. Who may
# reach it is the port mapping's business (compose publishes it on the host's
# loopback) or a login's (HTTP_WEB_CONFIG_FILE, docs/security.md).
ENV HTTP_ADDR=:9883
EXPOSE 9883
# Exec form: the image has no shell. The check reads HTTP_ADDR as the
# bridge does, and passes when /readyz answers 200: both links are up.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/exlive2mqtt", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/exlive2mqtt"]
