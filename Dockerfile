# wsgrpo image: the binary, the native libraries it loads at run time and the
# shipped base policy (train.model /opt/wsgrpo/base in deploy/compose/run.yaml
# and the Kubernetes ConfigMap). ONNX Runtime here is the CPU build; a sampler
# on a GPU needs an image with the CUDA build instead (deploy/README.md).
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
COPY testdata/base /opt/wsgrpo/base
# An unprivileged user owns /runs, where run directories go (a volume in
# docker-compose.yml, a PersistentVolumeClaim on Kubernetes).
RUN useradd --system --uid 10001 --home-dir /runs --no-create-home wsgrpo && \
    mkdir -p /runs && chown wsgrpo /runs
USER 10001
WORKDIR /runs
ENV WSGRPO_HOME=/opt/wsgrpo
ENTRYPOINT ["wsgrpo"]
