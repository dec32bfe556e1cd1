# The Hello application from "Mastering Distributed Tracing", chapter 7, in Rust.
# `make help` lists the targets.

SHELL := bash
CARGO ?= cargo
# Readable logs for people; the services default to JSON when piped.
LOG_FORMAT ?= text

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build both services (release)
	$(CARGO) build --locked --release --bins

.PHONY: run
run: build ## Run formatter-svc v1 on :8081 and hello-svc on :8080; Ctrl-C stops both
	@echo "hello-svc on http://localhost:8080 -> formatter-svc v1 on http://localhost:8081"
	@echo "try: curl http://localhost:8080/sayHello/Brian   (spans go to OTLP http://localhost:4318)"
	@LOG_FORMAT=$(LOG_FORMAT) ./scripts/run-local.sh

.PHONY: test
test: ## Build the binaries and run every test (unit, router and end-to-end)
	$(CARGO) build --locked --workspace --bins
	$(CARGO) test --locked --workspace

.PHONY: lint
lint: ## What CI checks besides the tests
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
