# The two commands of the README: `make run` and `make test`. Both first run
# scripts/bootstrap, which installs only what is missing.
SHELL := /bin/bash
CARGO ?= cargo
ADDR ?= 127.0.0.1:50051

.PHONY: run test bootstrap build

bootstrap:
	@scripts/bootstrap

build: bootstrap
	$(CARGO) build --release --locked

## Build in release and serve the bundled models/ and datasets/.
run: build
	./target/release/embedeval serve --addr $(ADDR) --models-dir models --datasets-dir datasets

## Format check, clippy, the whole test suite, the CUDA build's CPU fallback,
## a new user's command lines through the release binary, and the Python
## client's suite against servers of the release binary.
test: bootstrap
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	$(CARGO) test --locked
	$(CARGO) test --locked --lib --features cuda encoder::
	deploy/check
	$(CARGO) build --release --locked
	EMBEDEVAL_BIN=$(CURDIR)/target/release/embedeval $(CARGO) test --locked --test new_user
	clients/python/setup-venv.sh
	EMBEDEVAL_REQUIRE_SERVER=1 EMBEDEVAL_BIN=$(CURDIR)/target/release/embedeval \
	  clients/python/.venv/bin/pytest clients/python/tests -q
