# kiln — make targets. Every target installs what it needs: a fresh
# Debian 12 machine needs nothing but this repository (and ../shared/).

SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

.PHONY: test deps lint unit test-examples fuzz bench bench-frontend bench-layers bench-registry bench-run bench-build build docs demo clean

## test: install what the tests need, check formatting and lints, run every test and every example
test: deps lint unit test-examples

## deps: the Rust toolchain (rustup, stable) and the Debian packages the tests use
deps:
	@./scripts/install-deps.sh

## lint: cargo fmt --check and clippy with warnings as errors
lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## unit: all unit, conformance and CLI tests (prints the conformance counts)
unit: deps
	@mkdir -p target
	@set -o pipefail; status=0; $(CARGO) test --workspace --locked --no-fail-fast -- --nocapture 2>&1 \
		| tee target/test.log | grep -E '^(test result|.*conformance:|     Running)' || status=$$?; \
		bash scripts/fixtures/registry.sh stop >/dev/null 2>&1 || true; \
		if [ $$status -ne 0 ]; then echo "tests failed; the whole log:"; cat target/test.log; exit 1; fi

## test-examples: run every examples/*/run.sh against the registry fixture (root; after unit in make test)
test-examples: deps
	./scripts/test-examples.sh

## demo: kiln's main job end to end: build the WSGI example, run it with a published port, curl it (root)
demo:
	./scripts/demo.sh

## build: the release binary at target/release/kiln
build: deps
	$(CARGO) build --release --locked -p kiln

## docs: regenerate the command reference (docs/reference/) from the CLI definitions
docs:
	$(CARGO) run --quiet -p kiln -- debug docs docs/reference

## fuzz: ten minutes of cargo-fuzz on the Dockerfile frontend (see fuzz/README.md)
fuzz: deps
	./fuzz/run.sh 600

## bench: every benchmark in one go (root): frontend, layers, registry, run, build; each appends to bench/RESULTS.md
bench: deps bench-frontend bench-layers bench-registry bench-run bench-build

## bench-frontend: criterion benchmarks of the Dockerfile frontend
bench-frontend: deps
	$(CARGO) bench -p kiln-dockerfile --bench frontend

## bench-layers: layer write/apply against tar|zstd, tar|pigz and zstd -d|tar (root; installs hyperfine, pigz, zstd, debootstrap)
bench-layers: deps
	./bench/layers.sh

## bench-registry: pull and re-push of the fixture's Debian image against docker pull, podman pull and skopeo copy (root)
bench-registry: deps
	./bench/registry.sh

## bench-build: kiln build vs docker build (BuildKit) and buildah bud --layers: cold, no change, one file changed (root)
bench-build: deps
	./bench/build.sh

## bench-run: `run --rm busybox true` against runc run, docker run and podman run; monitor RSS; 20 in parallel (root)
bench-run: deps
	./bench/run.sh

clean:
	$(CARGO) clean
