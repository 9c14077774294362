# The builder base the Dockerfile names (rust:1.95-bookworm), made here by
# scripts/base-images from the debootstrapped debian:bookworm-slim: Debian's
# C toolchain and the Rust toolchain of the machine that builds it, laid out
# as the official image lays it out (CARGO_HOME=/usr/local/cargo, rustc and
# cargo on PATH).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc g++ libc6-dev make pkg-config ca-certificates curl git xz-utils \
 && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
