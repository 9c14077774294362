# syntax=docker/dockerfile:1
# Multi-stage build of embedeval. The build stage runs scripts/bootstrap
# --build-only (cmake, libopenblas-dev, nasm and ONNX Runtime: no database server,
# no test tools); the runtime stage carries the binary with libonnxruntime
# next to it (one of the places embedeval looks) and runs as a non-root user.
#
#   make image                  # embedeval:<version>, on the local base images
#                               # scripts/base-images makes (nothing pulled)
#   docker build -t embedeval .
#   docker build -t embedeval:gpu --build-arg ORT_FLAVOR=gpu \
#       --build-arg RUNTIME_BASE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 .
ARG RUNTIME_BASE=debian:bookworm-slim

FROM rust:1.95-bookworm AS build
# cpu: onnxruntime==1.31.1; gpu: onnxruntime-gpu==1.31.1 and the `cuda` cargo feature.
ARG ORT_FLAVOR=cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Layer caching, in three steps from the least to the most often changed:
#   1. the system packages and ONNX Runtime (scripts/bootstrap alone);
#   2. every dependency, faiss included (build-dependencies too), compiled
#      against stand-in sources and a stand-in build.rs: this layer depends
#      only on Cargo.toml and Cargo.lock, so editing src/, proto/ or build.rs
#      reuses it;
#   3. the real sources, touched so that cargo (which compares modification
#      times, and the copied files are older than the stand-ins) rebuilds the
#      embedeval crate and nothing else; `--version` then proves the binary
#      is the real one (the stand-in prints nothing).
# Plain layers rather than BuildKit cache mounts: the cache then travels
# with the image layers (--cache-from, a registry cache) and a compiled
# dependency can never find its registry sources gone from an evicted mount.
COPY scripts/bootstrap scripts/bootstrap
RUN EMBEDEVAL_ORT_FLAVOR="$ORT_FLAVOR" scripts/bootstrap --build-only

COPY Cargo.toml Cargo.lock ./
# Cargo refuses a manifest whose targets have no file: the library, the
# binary, the build script and the [[bench]] targets (harness = false, their
# names read from Cargo.toml) get
# stand-ins.
RUN mkdir -p src benches \
 && echo 'fn main() {}' > build.rs \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && for bench in $(awk '/^\[\[bench\]\]/ { b = 1; next } b && /^name/ { gsub(/"/, "", $3); print $3; b = 0 }' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$bench.rs"; done \
 && if [ "$ORT_FLAVOR" = gpu ]; then features="--features cuda"; else features=""; fi \
 && cargo build --release --locked $features \
 && rm -rf src benches build.rs

# What the crate compiles in: sqlx::migrate!("migrations/…") and
# include_bytes!("assets/fonts/…") read these at build time.
COPY build.rs ./
COPY proto proto
COPY migrations migrations
COPY assets assets
COPY benches benches
COPY src src
RUN touch build.rs src/main.rs src/lib.rs \
 && if [ "$ORT_FLAVOR" = gpu ]; then features="--features cuda"; else features=""; fi \
 && cargo build --release --locked $features \
 && target/release/embedeval --version | grep -q '^embedeval '

FROM ${RUNTIME_BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# The user the server runs as: uid and gid 10001, the runAsUser/runAsGroup of
# deploy/k8s/deployment.yaml. It owns the data folder and nothing else.
RUN groupadd --gid 10001 embedeval \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/embedeval \
      --shell /usr/sbin/nologin embedeval \
 && mkdir -p /var/lib/embedeval \
 && chown 10001:10001 /var/lib/embedeval \
 && chmod 0750 /var/lib/embedeval
WORKDIR /app
COPY --from=build /src/.deps/onnxruntime/ /app/
COPY models /app/models
COPY datasets /app/datasets
COPY --from=build /src/target/release/embedeval /app/embedeval
ENV EMBEDEVAL_ADDR=0.0.0.0:50051 \
    EMBEDEVAL_HTTP_ADDR=0.0.0.0:8080 \
    EMBEDEVAL_METRICS_ADDR=0.0.0.0:9090 \
    EMBEDEVAL_MODELS_DIR=/app/models \
    EMBEDEVAL_DATASETS_DIR=/app/datasets \
    EMBEDEVAL_DATA_DIR=/var/lib/embedeval \
    EMBEDEVAL_LOG_JSON=true
# Everything that must outlive the container lives here: uploaded models and
# datasets (<data-dir>/models, <data-dir>/datasets), the bundles mirrored from
# an object store (<data-dir>/mirror), the embedding cache and the SQLite
# results database (when no --database-url names PostgreSQL). /app/models and
# /app/datasets are the read-only bundles of the image.
VOLUME /var/lib/embedeval
# gRPC, the web dashboard, Prometheus metrics (/metrics).
EXPOSE 50051 8080 9090
# Numeric, so that a runtime enforcing non-root users (Kubernetes'
# runAsNonRoot) can tell without reading /etc/passwd: it is `embedeval`.
USER 10001:10001
# Asks grpc.health.v1 on the port of EMBEDEVAL_ADDR, through 127.0.0.1 when
# the server listens on every address (0.0.0.0, [::]). With TLS
# (EMBEDEVAL_TLS_CERT set) it dials https and `embedeval health` checks the
# server's certificate against --ca-cert: EMBEDEVAL_CA_CERT when set (the CA
# that signed the certificate, mounted next to it), else the certificate
# file itself, which does for a certificate file carrying its CA, or a
# self-signed one made with basicConstraints=CA:FALSE. The certificate must
# name the address dialled (IP:127.0.0.1 in its subjectAltName); otherwise
# set EMBEDEVAL_HEALTH_SERVER to a URL it names (https://localhost:50051).
# It reads the environment only: give the address and the certificate as
# EMBEDEVAL_ADDR and EMBEDEVAL_TLS_CERT rather than as serve's flags.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD addr="${EMBEDEVAL_ADDR:-127.0.0.1:50051}"; \
      port="${addr##*:}"; host="${addr%:*}"; \
      case "$host" in ""|0.0.0.0|"[::]") host=127.0.0.1 ;; esac; \
      if [ -n "${EMBEDEVAL_TLS_CERT:-}" ]; then \
        exec /app/embedeval health --timeout 4 \
          --server "${EMBEDEVAL_HEALTH_SERVER:-https://$host:$port}" \
          --ca-cert "${EMBEDEVAL_CA_CERT:-$EMBEDEVAL_TLS_CERT}"; \
      else \
        exec /app/embedeval health --timeout 4 \
          --server "${EMBEDEVAL_HEALTH_SERVER:-http://$host:$port}"; \
      fi
ENTRYPOINT ["/app/embedeval"]
CMD ["serve"]
