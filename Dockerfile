# syntax=docker/dockerfile:1
# Multi-stage build of embedeval. The build stage runs the same
# scripts/bootstrap as `make run` / `make test`; the runtime stage carries the
# binary with libonnxruntime next to it (one of the places embedeval looks).
#
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
COPY . .
RUN EMBEDEVAL_ORT_FLAVOR="$ORT_FLAVOR" scripts/bootstrap \
 && if [ "$ORT_FLAVOR" = gpu ]; then features="--features cuda"; else features=""; fi \
 && cargo build --release --locked $features

FROM ${RUNTIME_BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas0 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/embedeval /app/embedeval
COPY --from=build /src/.deps/onnxruntime/ /app/
COPY models /app/models
COPY datasets /app/datasets
ENV EMBEDEVAL_ADDR=0.0.0.0:50051 \
    EMBEDEVAL_MODELS_DIR=/app/models \
    EMBEDEVAL_DATASETS_DIR=/app/datasets \
    EMBEDEVAL_DATA_DIR=/var/lib/embedeval \
    EMBEDEVAL_LOG_JSON=true
# Everything that must outlive the container lives here: uploaded models and
# datasets (<data-dir>/models, <data-dir>/datasets), the results database and
# the embedding cache. /app/models and /app/datasets are the read-only bundles.
VOLUME /var/lib/embedeval
# gRPC, Prometheus metrics.
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/app/embedeval", "health", "--server", "http://127.0.0.1:50051"]
ENTRYPOINT ["/app/embedeval"]
CMD ["serve"]
