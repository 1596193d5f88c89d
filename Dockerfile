# Optional: the same image as `go run ./tools/image`, for people who have
# Docker/BuildKit. The tested, daemon-free path is tools/image (see
# docs/deploy.md). Multi-arch:
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=v0.1.0 -t REF --push .
FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$VERSION" -o /out/bitnet ./cmd/bitnet \
 && mkdir -m 1777 /out/tmp

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="bitnet" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.source="https://github.com/bitnet-mesh/bitnet-mesh"
COPY --from=build /out/bitnet /bitnet
COPY --from=build /out/tmp /tmp
ENV TMPDIR=/tmp
USER 65532:65532
EXPOSE 50051 8080
ENTRYPOINT ["/bitnet"]
