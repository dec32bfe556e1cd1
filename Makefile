# The Hello application from "Mastering Distributed Tracing", chapter 7, in Rust.
# `make help` lists the targets.

SHELL := bash
CARGO ?= cargo
# Readable logs for people; the services default to JSON when piped.
LOG_FORMAT ?= text

# Container images, as k8s/app.yaml names them.
TAG ?= latest
HELLO_IMAGE := hello-svc:$(TAG)
FORMATTER_IMAGE := formatter-svc:$(TAG)
# `make bench`'s load generator, installed with cargo when missing.
OHA_VERSION ?= 1.16.0
# Extra flags for the benchmark driver, e.g. BENCH_ARGS="--rounds 5".
BENCH_ARGS ?=

# `make soak` and `make fuzz`.
SOAK_MINUTES ?= 5
SOAK_RATE ?= 500
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= extract_headers encode_spans

# For `make install-istio`: the Istio release this project is tested against
# (its CRD schemas are in deploy-checks/fixtures/, its Jaeger addon in k8s/istio/addons/),
# and the tracing provider: `zipkin` (B3 + W3C) or `otel` (W3C, OTLP).
# istioctl prints its version as `client version: 1.30.3` (istio/istio 1.30.3,
# pkg/version/cobra.go; istioctl/pkg/version/version.go forces --short), and
# the install gate reads that line.
ISTIO_VERSION := 1.30.3
TRACING ?= zipkin
TRACING_PROVIDERS := zipkin otel
# The data plane, for install-istio, deploy-app, delete-app, deploy-hardening,
# hostport and mesh-e2e: `sidecar` (the book's, an Envoy beside each app:
# k8s/sidecar/) or `ambient` (ztunnel and a waypoint, no sidecars:
# k8s/ambient/). docs/ambient.md, "Sidecars or ambient: what the trace shows".
DATAPLANE ?= sidecar
DATAPLANES := sidecar ambient
# Jaeger's query UI, as the vendored addon serves it.
JAEGER_UI := http://localhost:16686/jaeger

# $(call require,TOOL): stop with one line when TOOL is not installed.
require = @command -v $(1) >/dev/null 2>&1 || { echo "make $@: '$(1)' is not installed; it is needed for this target" >&2; exit 1; }
# $(call one-of,VARIABLE,VALUES): stop with one line unless VARIABLE is one word of VALUES.
one-of = $(if $(and $(filter 1,$(words $($(1)))),$(filter $(2),$($(1)))),,$(error make $@: $(1)=$($(1)) is not one of: $(2)))

# What each data plane applies; `make deploy-app` runs deploy-app-$(DATAPLANE).
define deploy-app-sidecar
istioctl kube-inject -f k8s/app.yaml | kubectl apply -f -
kubectl apply -k k8s/sidecar
endef
define deploy-app-ambient
kubectl apply -f k8s/ambient/namespace.yaml
kubectl apply -f k8s/app.yaml
kubectl apply -k k8s/ambient
endef
# The namespace is `default`: it is unlabelled, never deleted.
define delete-app-ambient-namespace
kubectl label namespace default istio.io/dataplane-mode-
endef
# The ingress gateway's Service, for `make hostport`: Istio's
# istio-ingressgateway (demo profile), or the Service Istio deploys for the
# Gateway API Gateway hello-gateway of class istio (k8s/ambient/gateway.yaml),
# whose port is named after its listener.
gateway-service-sidecar := -n istio-system get service istio-ingressgateway
gateway-port-sidecar := http2
gateway-service-ambient := -n default get service hello-gateway-istio
gateway-port-ambient := http

.DEFAULT_GOAL := help

##@ Local (no cluster needed)

.PHONY: help
help: ## List the targets
	@awk -F':.*## ' '/^##@/ { printf "\n%s\n", substr($$0, 5); next } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-20s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build both services and the trace viewer (release), and nothing else
	$(CARGO) build --locked --release -p hello-svc -p formatter-svc -p trace-viewer

.PHONY: run
run: build ## Run formatter-svc v1 on :8081 and hello-svc on :8080, with the trace view; Ctrl-C stops all
	@echo "hello-svc on http://localhost:8080 -> formatter-svc v1 on http://localhost:8081"
	@echo "try: curl -A Netscape http://localhost:8080/sayHello/Brian"
	@LOG_FORMAT=$(LOG_FORMAT) ./scripts/run-local.sh

.PHONY: test
test: ## Build the binaries and run every test (unit, conformance, end-to-end, interop)
	@./scripts/interop-deps.sh
	$(CARGO) build --locked --workspace --bins
	$(CARGO) test --locked --workspace

.PHONY: bench-instructions
bench-instructions: ## Instructions a request per service and arm, and each arm against the bare axum + reqwest pair, under callgrind (valgrind; about 6 min)
	@command -v oha >/dev/null 2>&1 || { echo "installing the load generator: cargo install oha --version $(OHA_VERSION) --locked"; \
		$(CARGO) install oha --version $(OHA_VERSION) --locked; }
	$(CARGO) build --locked --profile profiling -p hello-svc -p formatter-svc -p bare-pair
	$(CARGO) build --locked --release -p bench
	./scripts/bench-instructions.sh

.PHONY: bench
bench: ## Measure what tracing costs: release build, oha load, Markdown tables (about 3 min)
	@command -v oha >/dev/null 2>&1 || { echo "installing the load generator: cargo install oha --version $(OHA_VERSION) --locked"; \
		$(CARGO) install oha --version $(OHA_VERSION) --locked; }
	$(CARGO) build --locked --release -p hello-svc -p formatter-svc -p bench
	$(CARGO) bench --locked -p mesh-propagation --bench propagation -- --warm-up-time 1 --measurement-time 3
	./target/release/mesh-bench $(BENCH_ARGS)

.PHONY: soak
soak: ## Opt-in: 5 minutes of steady traced load; zero errors, no span lost, flat RSS and fds
	@command -v oha >/dev/null 2>&1 || $(CARGO) install oha --version $(OHA_VERSION) --locked
	$(CARGO) build --locked --release -p hello-svc -p formatter-svc -p bench
	./target/release/mesh-bench --soak-minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

.PHONY: fuzz
fuzz: ## Opt-in: fuzz header extraction and the OTLP encoder for FUZZ_SECONDS each (installs cargo-fuzz)
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run $$target -- -max_total_time=$(FUZZ_SECONDS) -max_len=4096 || exit 1; \
	done

.PHONY: lint
lint: ## What CI checks besides the tests: formatting, clippy and rustdoc (the fuzz crate too), unused dependencies, actionlint, shellcheck, hadolint
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@# Private items are documented too; a public doc links only to public ones.
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps --document-private-items --locked
	cd fuzz && $(CARGO) fmt -- --check && $(CARGO) clippy --locked -- -D warnings
	./scripts/lint-files.sh

##@ Kubernetes with Istio (the chapter's workflow)

.PHONY: build-app
build-app: ## Build the images hello-svc and formatter-svc, tagged TAG (default latest); needs BuildKit
	$(call require,docker)
	@docker buildx version >/dev/null 2>&1 || { echo "make $@: Docker BuildKit (docker buildx) is required: the Dockerfile uses cache mounts; install the docker-buildx plugin" >&2; exit 1; }
	docker build --target hello-svc -t $(HELLO_IMAGE) .
	docker build --target formatter-svc -t $(FORMATTER_IMAGE) .
	@echo "*** make sure the right docker repository is used"
	@echo "*** on minikube run this first: eval \$$(minikube docker-env)"

# deploy-app reads the installed data plane from ztunnel's DaemonSet, which
# only the ambient profile installs (istio/istio 1.30.3,
# manifests/charts/ztunnel/templates/daemonset.yaml, named `ztunnel`).
.PHONY: deploy-app
deploy-app: ## Deploy the app, its ingress and routing on DATAPLANE (sidecar: istioctl kube-inject; ambient: the waypoint)
	$(call one-of,DATAPLANE,$(DATAPLANES))
	$(call require,kubectl)
	$(if $(filter sidecar,$(DATAPLANE)),$(call require,istioctl))
	@z=$$(kubectl -n istio-system get daemonset ztunnel --ignore-not-found -o name) || { \
		echo "make $@: cannot read namespace istio-system: is the cluster up, and Istio installed (make install-istio)?" >&2; exit 1; }; \
	if [ -n "$$z" ]; then installed=ambient; else installed=sidecar; fi; \
	[ "$$installed" = $(DATAPLANE) ] || { \
		echo "make $@: DATAPLANE=$(DATAPLANE), but Istio in this cluster is installed for $$installed; use make deploy-app DATAPLANE=$$installed, or reinstall with make install-istio DATAPLANE=$(DATAPLANE)" >&2; exit 1; }
	$(deploy-app-$(DATAPLANE))

.PHONY: delete-app
delete-app: ## Remove everything deploy-app and deploy-hardening created on DATAPLANE
	$(call one-of,DATAPLANE,$(DATAPLANES))
	$(call require,kubectl)
	kubectl delete --ignore-not-found -k k8s/$(DATAPLANE)/hardening
	kubectl delete --ignore-not-found -k k8s/$(DATAPLANE)
	kubectl delete --ignore-not-found -f k8s/app.yaml
	$(if $(filter ambient,$(DATAPLANE)),$(delete-app-ambient-namespace))

.PHONY: deploy-hardening
deploy-hardening: ## Optional: STRICT mTLS, and only hello-svc may call formatter-svc (DATAPLANE=sidecar|ambient)
	$(call one-of,DATAPLANE,$(DATAPLANES))
	$(call require,kubectl)
	kubectl apply -k k8s/$(DATAPLANE)/hardening

.PHONY: hostport
hostport: ## Print `export GATEWAY_URL=host:port`, to use as: eval "$(make hostport)" (DATAPLANE=sidecar|ambient)
	$(call one-of,DATAPLANE,$(DATAPLANES))
	$(call require,kubectl)
	@svc="kubectl $(gateway-service-$(DATAPLANE)) -o jsonpath"; \
	$$svc='{.metadata.name}' >/dev/null 2>&1 || { \
		echo "make hostport: cannot run kubectl $(gateway-service-$(DATAPLANE)): is the cluster up, Istio installed and the app deployed for DATAPLANE=$(DATAPLANE)?" >&2; exit 1; }; \
	host=$$($$svc='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}'); \
	if [ -n "$$host" ]; then \
		port=$$($$svc='{.spec.ports[?(@.name=="$(gateway-port-$(DATAPLANE))")].port}'); \
	elif command -v minikube >/dev/null 2>&1; then \
		host=$$(minikube ip); \
		port=$$($$svc='{.spec.ports[?(@.name=="$(gateway-port-$(DATAPLANE))")].nodePort}'); \
	else \
		echo "make hostport: the ingress gateway has no external address and minikube is not installed" >&2; exit 1; \
	fi; \
	echo "export GATEWAY_URL=$$host:$$port"

.PHONY: jaeger
jaeger: ## Port-forward the Jaeger v2 UI of Istio's addon to localhost:16686
	$(call require,kubectl)
	@echo "Jaeger UI: $(JAEGER_UI)   (Ctrl-C to stop)"
	kubectl -n istio-system port-forward service/tracing 16686:80

.PHONY: logs-hello
logs-hello: ## Logs of hello-svc
	$(call require,kubectl)
	kubectl logs -l app=hello-svc -c hello-svc --tail=200

.PHONY: logs-formatter-v1
logs-formatter-v1: ## Logs of formatter-svc v1 (the headers each request carried)
	$(call require,kubectl)
	kubectl logs -l app=formatter-svc,version=v1 -c formatter-svc --tail=200

.PHONY: logs-formatter-v2
logs-formatter-v2: ## Logs of formatter-svc v2
	$(call require,kubectl)
	kubectl logs -l app=formatter-svc,version=v2 -c formatter-svc --tail=200

.PHONY: mesh-e2e
mesh-e2e: ## The live mesh test on a throwaway kind cluster (Docker, internet); TRACING=zipkin|otel, DATAPLANE=sidecar|ambient
	$(if $(filter $(TRACING),$(TRACING_PROVIDERS)),,$(error make mesh-e2e: TRACING=$(TRACING) is not one of: $(TRACING_PROVIDERS)))
	$(call one-of,DATAPLANE,$(DATAPLANES))
	TRACING=$(TRACING) DATAPLANE=$(DATAPLANE) ./scripts/mesh-e2e.sh

# Ambient: the Gateway API CRDs first (waypoints and the ingress are Gateway
# API Gateways; Istio does not install them), server-side as the Gateway
# API's getting-started guide applies them (kubernetes-sigs/gateway-api
# v1.5.1, site-src/guides/getting-started/index.md): client-side apply would
# copy each CRD into an annotation, and the HTTPRoute CRD's 244 KB is close
# to the API server's 256 KiB limit on annotations. Then the ambient profile:
# istioctl applies --set flags after the files (istio/istio 1.30.3,
# operator/pkg/render/manifest.go, MergeInputs), so it replaces the file's
# `profile: demo` and keeps its tracing providers.
.PHONY: install-istio
install-istio: ## Istio ISTIO_VERSION with the TRACING provider (zipkin|otel) and Jaeger v2; DATAPLANE=sidecar (demo profile) or ambient
	$(if $(filter $(TRACING),$(TRACING_PROVIDERS)),,$(error make install-istio: TRACING=$(TRACING) is not one of: $(TRACING_PROVIDERS)))
	$(call one-of,DATAPLANE,$(DATAPLANES))
	$(call require,istioctl)
	$(call require,kubectl)
	@v=$$(istioctl version --remote=false --short 2>/dev/null | sed -n 's/^client version: //p'); case "$$v" in \
		$(basename $(ISTIO_VERSION)).*) ;; \
		"") echo "make $@: cannot read istioctl's client version (istioctl version --remote=false); this project is tested with Istio $(ISTIO_VERSION)" >&2; exit 1 ;; \
		*) echo "make $@: istioctl $$v found; this project is tested with Istio $(ISTIO_VERSION): https://istio.io/latest/docs/setup/additional-setup/download-istio-release/" >&2; exit 1 ;; \
	esac
	$(if $(filter ambient,$(DATAPLANE)),kubectl apply --server-side -f k8s/gateway-api/standard-install.yaml)
	istioctl install -y -f k8s/istio/tracing-$(TRACING).yaml$(if $(filter ambient,$(DATAPLANE)), --set profile=ambient)
	kubectl apply -f k8s/istio/addons/jaeger.yaml
	kubectl apply -f k8s/istio/telemetry-$(TRACING).yaml
	@echo "data plane: $(DATAPLANE); tracing provider: $(TRACING); Jaeger: make jaeger, then $(JAEGER_UI)"
