# syntax=docker/dockerfile:1
# The controller image: a static binary on distroless, running as nonroot.
# Built with the same flags as `make build`; `make image` passes VERSION.

FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X github.com/spinscale/spinscale/internal/version.Version=${VERSION}" \
    -o /out/autoscaler ./cmd/autoscaler

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/autoscaler /autoscaler
COPY config.yaml /etc/spinscale/config.yaml
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/autoscaler"]
CMD ["run", "--config=/etc/spinscale/config.yaml"]
