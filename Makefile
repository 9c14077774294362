# The two commands of the README: `make run` and `make test`. Both first run
# scripts/bootstrap, which installs only what is missing.
SHELL := /bin/bash
CARGO ?= cargo
ADDR ?= 127.0.0.1:50051
HTTP_ADDR ?= 127.0.0.1:8080

VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
ORT_FLAVOR ?= cpu
# The GPU flavour's runtime base (CUDA and cuDNN from NVIDIA's image).
GPU_BASE ?= nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ifeq ($(ORT_FLAVOR),gpu)
IMAGE ?= embedeval:$(VERSION)-gpu
else
IMAGE ?= embedeval:$(VERSION)
endif

.PHONY: run test bootstrap build image containers chaos stack stack-down book

bootstrap:
	@scripts/bootstrap

build: bootstrap
	$(CARGO) build --release --locked

## Build in release and serve the bundled models/ and datasets/: gRPC on
## $(ADDR), the web dashboard on $(HTTP_ADDR).
run: build
	@echo "embedeval: gRPC on $(ADDR); the dashboard on http://$(HTTP_ADDR)"
	./target/release/embedeval serve --addr $(ADDR) --http-addr $(HTTP_ADDR) --models-dir models --datasets-dir datasets

## The container image embedeval:<version> from the Dockerfile, on the local
## base images scripts/base-images makes from Debian's packages (nothing is
## pulled). ORT_FLAVOR=gpu builds embedeval:<version>-gpu where $(GPU_BASE)
## is present.
image:
	scripts/base-images
ifeq ($(ORT_FLAVOR),gpu)
	@docker image inspect $(GPU_BASE) >/dev/null 2>&1 || { \
	  echo "make image: the GPU flavour runs on $(GPU_BASE), which is not on this machine (and no registry is reachable to pull it): load it, or set GPU_BASE" >&2; exit 1; }
	docker build -t $(IMAGE) --build-arg ORT_FLAVOR=gpu --build-arg RUNTIME_BASE=$(GPU_BASE) .
else
	docker build -t $(IMAGE) .
endif

## The container suite (tests/containers.rs) where a Docker daemon answers:
## the image, PostgreSQL's and the store's images of deploy/compose.yaml,
## then the faults. Skipped with one loud line where no daemon answers.
containers:
	@if ! docker info >/dev/null 2>&1; then \
	  echo; echo "*** CONTAINER SUITE SKIPPED: no Docker daemon answers (docker info failed) ***"; echo; \
	else \
	  $(MAKE) --no-print-directory image ORT_FLAVOR=cpu && \
	  docker build -q -t embedeval-postgres:15 -f deploy/images/postgres.Dockerfile deploy/images && \
	  docker build -q -t embedeval-store:5.2.5 -f deploy/images/store.Dockerfile deploy/images && \
	  EMBEDEVAL_IMAGE=embedeval:$(VERSION) $(CARGO) test --locked --test containers -- --ignored --nocapture --test-threads=1; \
	fi

## Chaos under load (tests/chaos.rs), not part of `make test`: three
## replicas, PostgreSQL and the object store as processes on this host, three
## clients, faults at random for CHAOS_SECONDS (20 minutes), then the
## invariant checker; CHAOS_SEED repeats a run's choices.
CHAOS_SECONDS ?= 1200
chaos: bootstrap
	EMBEDEVAL_CHAOS_SECONDS=$(CHAOS_SECONDS) EMBEDEVAL_CHAOS_SEED=$(CHAOS_SEED) \
	  $(CARGO) test --locked --test chaos -- --ignored --nocapture

## Three replicas, PostgreSQL and the object store of deploy/compose.yaml,
## up and answering (deploy/up): builds the images that are missing, makes the
## secrets that are missing in deploy/secrets (token, database password, a CA
## and the replicas' certificate), `docker-compose up -d`, waits until the
## replicas are SERVING and prints their URLs, the CA and token paths and an
## `eval` line.
stack:
	deploy/up

## Removes that stack, its volumes (the results and stored objects) too
## (deploy/down); the images and deploy/secrets stay.
stack-down:
	deploy/down

## The book (docs/book.toml, chapters in docs/book/): mdBook builds it into
## target/book/ (open target/book/index.html), scripts/check-book checks
## every link, image and anchor of the book and the README.
MDBOOK ?= .deps/mdbook/bin/mdbook
book: bootstrap
	$(MDBOOK) build docs
	scripts/check-book

## Format check, the book's build and link check, the layering rules
## (scripts/check-layers), clippy, the whole test
## suite, the CUDA build's CPU fallback,
## a new user's command lines through the release binary, the Python
## client's suite against servers of the release binary, the dashboard in
## a real browser (headless chromium over WebDriver), the retrieval and
## clustering metrics against pytorch-metric-learning, faiss-python and
## scikit-learn (tests/parity), the Lightning callback in a real
## lightning.Trainer (tests/lightning), and the container suite. The release
## binary is the image's where a Docker daemon answers (compiled once, in
## the image), else the host's (scripts/release-binary).
## Each step prints how long it took.
test: bootstrap
	@scripts/timed "format check" $(CARGO) fmt --check
	@scripts/timed "book" $(MDBOOK) build docs
	@scripts/timed "book links" scripts/check-book
	@scripts/timed "layering rules" scripts/check-layers
	@scripts/timed "clippy" $(CARGO) clippy --all-targets --locked -- -D warnings
	@scripts/timed "cargo test" $(CARGO) test --locked
	@scripts/timed "CUDA build, CPU fallback" $(CARGO) test --locked --lib --features cuda encoder::
	@scripts/timed "deploy/check" deploy/check
	@bin="$$(scripts/timed "release binary" scripts/release-binary)" && \
	  scripts/timed "new user's command lines" env EMBEDEVAL_BIN="$$bin" $(CARGO) test --locked --test new_user && \
	  scripts/timed "Python venv" clients/python/setup-venv.sh && \
	  scripts/timed "Python lint and types" sh -c 'cd clients/python && .venv/bin/ruff check src tests && .venv/bin/mypy' && \
	  scripts/timed "Python client suite" env EMBEDEVAL_REQUIRE_SERVER=1 EMBEDEVAL_BIN="$$bin" \
	    clients/python/.venv/bin/pytest clients/python/tests -q && \
	  scripts/timed "dashboard in a browser" env EMBEDEVAL_REQUIRE_BROWSER=1 EMBEDEVAL_BIN="$$bin" \
	    tests/browser/.venv/bin/pytest tests/browser -q -p no:cacheprovider && \
	  scripts/timed "retrieval parity with pytorch-metric-learning" env EMBEDEVAL_BIN="$$bin" \
	    tests/parity/.venv/bin/pytest tests/parity -q -rs -p no:cacheprovider && \
	  scripts/timed "Lightning callback in a real Trainer" env EMBEDEVAL_BIN="$$bin" \
	    tests/lightning/.venv/bin/pytest tests/lightning -q -rs -s -p no:cacheprovider
	@scripts/timed "container suite" $(MAKE) --no-print-directory containers
