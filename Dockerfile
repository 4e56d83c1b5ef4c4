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
# The embedded NATS server (only when NATS_URL is empty) keeps its JetStream store here.
ENV BRIDGE_DATA_DIR=/data BRIDGE_LOG_FORMAT=json BRIDGE_EMBEDDED_NATS_ADDR=0.0.0.0:4222
VOLUME /data
EXPOSE 8080 4222
USER nonroot:nonroot
ENTRYPOINT ["/bridge"]
CMD ["run"]
