# Quick start: `make run` (installs, builds in release mode, runs) and `make test`.
SWIFT ?= swift
THREADS ?=

.PHONY: deps build release run test bench fixtures clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

run: release
	.build/release/unilip bench core $(if $(THREADS),--threads $(THREADS),)

test: deps
	$(SWIFT) test

# Our timings next to PyTorch CPU's on the same work; writes docs/PERFORMANCE.md.
bench: release
	python3 Tools/reference/performance.py

# Golden values from PyTorch (needs: pip install "torch==2.13.0+cpu" numpy safetensors scikit-image).
fixtures:
	python3 Tools/reference/make_fixtures.py

clean:
	rm -rf .build
