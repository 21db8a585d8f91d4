# Spinscale: `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BIN         := $(CURDIR)/bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/spinscale/spinscale/internal/version.Version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)
HELM_VERSION := v4.3.2
HELM_MODULE := helm.sh/helm/v4
HELM        := $(BIN)/helm-$(HELM_VERSION)
PROMTOOL    := $(BIN)/promtool
IMAGE       ?= ghcr.io/spinscale/spinscale:$(VERSION)
FUZZTIME    ?= 30s
PREFIX      ?= $(HOME)/.local/bin
SIZES       ?= 100,250,500

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/autoscaler (static, version stamped)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/autoscaler ./cmd/autoscaler

.PHONY: test
test: deploy-tools ## Run every test with the race detector, integration tests on a local control plane included
	hack/cluster/build.sh
	$(GO) test -race -count=1 -timeout 40m ./...

.PHONY: test-unit
test-unit: deploy-tools ## Run the unit tests only (no cluster)
	$(GO) test -race -count=1 -short ./...

.PHONY: lint
lint: $(STATICCHECK) ## Run go vet and staticcheck (the test cluster's metrics adapter module too)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd hack/cluster/metrics-adapter && GOWORK=off $(GO) vet ./... && GOWORK=off $(STATICCHECK) ./...

.PHONY: verify
verify: lint ## gofmt, vet, staticcheck, go.mod tidy, shipped config == defaults
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) test -count=1 -run 'TestShippedConfig' ./cmd/autoscaler/

.PHONY: install-kubectl-plugin
install-kubectl-plugin: build ## Install bin/autoscaler in PREFIX (default ~/.local/bin) as kubectl-spinscale: kubectl spinscale status
	install -d $(PREFIX)
	install -m 0755 $(BIN)/autoscaler $(PREFIX)/kubectl-spinscale

.PHONY: image
image: ## Build the container image IMAGE with docker (same flags as build)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

.PHONY: manifests
manifests: $(HELM) ## Render deploy/manifests (plain YAML, kustomize) from the Helm chart
	deploy/generate-manifests.sh $(HELM) deploy/manifests

.PHONY: chart-lint
chart-lint: deploy-tools ## helm lint the chart; check manifests, RBAC, dashboard and alert rules
	$(HELM) lint --strict deploy/helm/spinscale
	$(GO) test -count=1 ./deploy/

.PHONY: deploy-tools
deploy-tools: $(HELM) $(PROMTOOL) ## Install the tools the deploy/ tests run: Helm (pinned) and promtool, into bin/

.PHONY: bench
bench: ## Run the benchmarks (decisions per second, allocations)
	$(GO) test -short -run '^$$' -bench . -benchmem ./internal/...

.PHONY: bench-quality
bench-quality: ## Score the hpa and spinscale profiles on the standard load traces against the oracle (docs/quality.md)
	$(GO) run ./bench/quality

.PHONY: bench-frontier
bench-frontier: ## Measure the profiles against HPA's cost/safety frontier on held-out windows of real traffic (docs/quality.md)
	$(GO) run ./bench/frontier -plot bench/images/frontier.png

.PHONY: bench-latency
bench-latency: ## Reaction latency on a local control plane, Spinscale and the real HPA side by side (docs/operating.md)
	bench/latency.sh

.PHONY: bench-scale
bench-scale: ## Thousands of apps on a local control plane, Spinscale and the real HPA side by side (docs/scale.md; SIZES=100,250,500)
	bench/scale.sh -sizes $(SIZES)

.PHONY: bench-scale-memory
bench-scale-memory: ## The controller's RSS with 5,000 Spinscale apps × 5 pods on a local control plane, every tick deciding for all (docs/scale.md)
	hack/cluster/build.sh
	go run ./bench/scale -memory 5000 -memory-pods 5

.PHONY: bench-podcache
bench-podcache: ## The controller's memory with 20,000 unrelated pods in its namespaces, with and without podSelector (docs/scale.md)
	bench/podcache.sh

.PHONY: bench-activator
bench-activator: ## The HTTP activator on a local control plane: added latency, requests per CPU-second, held-request memory, first request at zero, load step → /scale
	bench/activator.sh

.PHONY: fuzz
fuzz: ## Fuzz the annotation parser and the engine for FUZZTIME each
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/annotations/
	$(GO) test -run '^$$' -fuzz '^FuzzDecide$$' -fuzztime $(FUZZTIME) ./internal/recommender/

.PHONY: demo
demo: build ## Autoscale SpinApps on a local control plane: on cpu, on RPS from Prometheus, then to zero and back through the activator (first run builds it: ~20 min)
	AUTOSCALER=$(BIN)/autoscaler hack/demo.sh
	AUTOSCALER=$(BIN)/autoscaler hack/demo-rps.sh
	AUTOSCALER=$(BIN)/autoscaler hack/demo-zero.sh

.PHONY: demo-simulate
demo-simulate: build ## Run the example scenarios through the decision engine (no cluster)
	@for f in examples/*.yaml; do \
	  echo "=== $$f"; awk '/^#/ {sub(/^# ?/, ""); print; next} {exit}' $$f; \
	  $(BIN)/autoscaler simulate --scenario $$f; echo; \
	done

$(STATICCHECK):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $@

$(HELM):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install $(HELM_MODULE)/cmd/helm@$(HELM_VERSION)
	mv $(BIN)/helm $@

# promtool: the system's, else extracted from Debian's prometheus package
# (apt-get download: no service installed, no root needed unless the package
# index must be refreshed).
$(PROMTOOL):
	@mkdir -p $(BIN)
	@if command -v promtool >/dev/null 2>&1; then ln -sf "$$(command -v promtool)" $@; exit 0; fi; \
	  echo "fetching promtool from Debian's prometheus package" >&2; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  apt-get download prometheus >&2 || { \
	    sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	    $$sudo apt-get update -qq >&2 && apt-get download prometheus >&2; }; \
	  dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool >$@.tmp; \
	  chmod +x $@.tmp; mv $@.tmp $@

.PHONY: clean
clean: ## Remove build outputs
	rm -rf $(BIN)
