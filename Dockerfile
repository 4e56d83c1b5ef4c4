# syntax=docker/dockerfile:1
# Multi-stage build: a static binary in a distroless image, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags="-s -w" -o /out/bridge ./cmd/bridge && mkdir /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/bridge /bridge
COPY --from=build --chown=65532:65532 /out/data /data
# The embedded NATS server (only when NATS_URL is empty) keeps its JetStream store here. It
# listens on the container's loopback only: to reach it from outside, set
# BRIDGE_EMBEDDED_NATS_ADDR=0.0.0.0:4222 together with BRIDGE_EMBEDDED_NATS_TOKEN (the bridge
# refuses a non-loopback address without it), or better, set NATS_URL to a real NATS server.
# See "Running the image" in the README.
ENV BRIDGE_DATA_DIR=/data BRIDGE_LOG_FORMAT=json BRIDGE_EMBEDDED_NATS_ADDR=127.0.0.1:4222
VOLUME /data
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/bridge"]
CMD ["run"]
