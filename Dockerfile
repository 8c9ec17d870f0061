# wsgrpo image: the binary plus the native libraries it loads at run time.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -o /out/wsgrpo ./cmd/wsgrpo

FROM node:20-bookworm-slim AS libs
WORKDIR /libs
COPY scripts/setup.sh /setup.sh
RUN WSGRPO_HOME=/opt/wsgrpo bash /setup.sh

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=libs /opt/wsgrpo /opt/wsgrpo
COPY --from=build /out/wsgrpo /usr/local/bin/wsgrpo
ENV WSGRPO_HOME=/opt/wsgrpo
ENTRYPOINT ["wsgrpo"]
