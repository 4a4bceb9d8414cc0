# Emporium developer commands. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# uv at the version pyproject.toml pins: .tools/uv-<version>/ unless UV names one already
# (infra/local/toolchain.sh installs it, with Go and npm, when missing).
UV      ?= $(shell infra/local/toolchain.sh uv-path)
RUN     := $(UV) run --frozen --
BUF     := $(RUN) buf
PROTOC  := $(RUN) python -m grpc_tools.protoc

# Go: /usr/local/go or PATH when recent enough, else one toolchain.sh installs (a recipe's `$(GO)`).
GO := "$$($(CURDIR)/infra/local/toolchain.sh go-bin)/go"

# The OpenAPI generator: gnostic's protoc-gen-openapi (OpenAPI 3), built with `go install`.
GNOSTIC_VERSION := v0.7.1
TOOLS           := $(CURDIR)/.tools
OPENAPI_PLUGIN  := $(TOOLS)/gnostic-$(GNOSTIC_VERSION)/protoc-gen-openapi
# grpcurl for the e2e tests (and for you): `go install` into .tools, like the generator.
GRPCURL_VERSION := v1.9.3
GRPCURL         := $(TOOLS)/grpcurl-$(GRPCURL_VERSION)/grpcurl
# The edge bench's load generators (bench/edge.py): ghz (gRPC) by `go install` into .tools,
# wrk (HTTP) from Debian.
GHZ_VERSION     := v0.120.0
GHZ             := $(TOOLS)/ghz-$(GHZ_VERSION)/ghz
WRK             ?= /usr/bin/wrk
# Helm for the chart checks: `go install` into .tools as well.
HELM_VERSION    := v3.21.4
HELM            := $(TOOLS)/helm-$(HELM_VERSION)/helm
CHART           := helm/emporium
# The Compose specification's JSON schema, as Docker Compose's loader (compose-go) embeds it.
COMPOSE_GO_VERSION := v2.9.1
COMPOSE_SCHEMA     := $(TOOLS)/compose-go-$(COMPOSE_GO_VERSION)/compose-spec.json
# The Go client example (clients/go): protoc plugins by `go install`, stubs generated from protos/
# into clients/go/gen (git-ignored) before it is built; the googleapis types map to genproto.
PROTOC_GEN_GO      := $(TOOLS)/protoc-gen-go-v1.36.12/protoc-gen-go
PROTOC_GEN_GO_GRPC := $(TOOLS)/protoc-gen-go-grpc-v1.6.2/protoc-gen-go-grpc
GO_CLIENT_MODULE   := emporium.example/client
GO_CLIENT_M = $(subst $(space),$(comma),$(foreach f,$(PROTO_FILES),M$(f)=$(GO_CLIENT_MODULE)/gen/$(patsubst %/,%,$(dir $(f)));$(word 2,$(subst /, ,$(f)))v1)) \
    $(subst $(space),$(comma),$(foreach f,annotations http field_behavior,Mgoogle/api/$(f).proto=google.golang.org/genproto/googleapis/api/annotations)) \
    Mgoogle/api/httpbody.proto=google.golang.org/genproto/googleapis/api/httpbody \
    Mgoogle/type/money.proto=google.golang.org/genproto/googleapis/type/money \
    Mgoogle/type/postal_address.proto=google.golang.org/genproto/googleapis/type/postaladdress \
    Mgoogle/type/date.proto=google.golang.org/genproto/googleapis/type/date
GO_CLIENT_OPTS = module=$(GO_CLIENT_MODULE)/gen,$(subst $(space),$(comma),$(strip $(GO_CLIENT_M)))
# The browser of the docs-page test: Debian's chromium, driven by Playwright (PyPI).
CHROMIUM        ?= /usr/bin/chromium
export EMPORIUM_GRPCURL  := $(GRPCURL)
export EMPORIUM_CHROMIUM := $(CHROMIUM)

# The local stack (infra/local/stack.py): servers, services and Envoy under honcho. It runs uv
# from $UV, the same uv as here.
STACK := infra/local/stack
# `make run ONLY="servers gateway"` starts only those (names: see `infra/local/stack --help`).
ONLY ?=
export UV

# Where `make gen` writes; gen-check points it at a temporary folder.
GEN_OUT ?= gen
# What `buf breaking` compares the working tree with.
BREAKING_AGAINST ?= .git\#branch=main

PROTO_FILES := $(shell cd protos && find emporium -name '*.proto' | LC_ALL=C sort)
# protoc-gen-openapi is a Go plugin and insists on a Go import path per file; the protos carry
# no go_package (there is no Go module yet), so map each file to one here.
comma := ,
empty :=
space := $(empty) $(empty)
OPENAPI_GO_PATHS := $(subst $(space),,$(foreach f,$(PROTO_FILES),$(comma)M$(f)=emporium/gen/go/$(patsubst %/,%,$(dir $(f)))))
OPENAPI_OPTS := naming=proto,enum_type=string,default_response=true,fq_schema_naming=true,title=Emporium API,version=v1,description=REST and JSON over the Emporium gRPC services (transcoded by Envoy)$(OPENAPI_GO_PATHS)

.PHONY: help seed load clients toolchain deploy-files deploy-check chart-check setup gen gen-check lint fmt test test-unit test-integration test-e2e test-stack test-crash test-crash-extended test-fuzz \
    e2e-tools bench-tools bench-edge bench-tracing run stack-up stack-down stack-status clean-data vendor-protos clean

help: ## List the commands.
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

toolchain: ## Install what is missing on a fresh Debian machine: uv (pinned), Go, npm.
	infra/local/toolchain.sh

setup: toolchain $(OPENAPI_PLUGIN) $(GRPCURL) ## Install the pinned Python env, code generators, Swagger UI, grpcurl.
	$(UV) sync --frozen
	gateway/install-swagger-ui.sh >/dev/null

$(GRPCURL):
	GOBIN=$(dir $@) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

# Debian's chromium (needs root or sudo, like the servers' packages); skipped when CHROMIUM exists.
$(CHROMIUM):
	bash -c 'source infra/local/env.sh && source infra/local/lib.sh && apt_ensure chromium'

$(GHZ):
	GOBIN=$(dir $@) $(GO) install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION)

$(WRK):
	bash -c 'source infra/local/env.sh && source infra/local/lib.sh && apt_ensure wrk'

bench-tools: $(GHZ) $(WRK) ## Install the edge bench's load generators: ghz (go install), wrk (Debian).

e2e-tools: $(GRPCURL) $(CHROMIUM) ## Install what the e2e tests need besides the stack: grpcurl, Chromium.

$(OPENAPI_PLUGIN):
	GOBIN=$(dir $@) $(GO) install github.com/google/gnostic/cmd/protoc-gen-openapi@$(GNOSTIC_VERSION)

gen: $(OPENAPI_PLUGIN) ## Regenerate gen/ (Python stubs, descriptor set, OpenAPI) from protos/.
	rm -rf $(GEN_OUT)/python/emporium $(GEN_OUT)/descriptor $(GEN_OUT)/openapi
	mkdir -p $(GEN_OUT)/python $(GEN_OUT)/descriptor $(GEN_OUT)/openapi
	$(PROTOC) -Iprotos -Iprotos/third_party --python_out=$(GEN_OUT)/python \
	    --pyi_out=$(GEN_OUT)/python --grpc_python_out=$(GEN_OUT)/python $(PROTO_FILES)
	# Envoy's transcoder needs every import, and error_details so rich errors survive.
	$(PROTOC) -Iprotos -Iprotos/third_party --include_imports --include_source_info \
	    --descriptor_set_out=$(GEN_OUT)/descriptor/emporium.binpb \
	    $(PROTO_FILES) google/rpc/error_details.proto
	$(PROTOC) -Iprotos -Iprotos/third_party --plugin=protoc-gen-openapi=$(OPENAPI_PLUGIN) \
	    --openapi_out=$(GEN_OUT)/openapi --openapi_opt='$(OPENAPI_OPTS)' $(PROTO_FILES)
	# Security schemes and error responses the generator cannot know (gateway/openapi.py).
	$(RUN) python -m gateway.openapi $(GEN_OUT)/openapi/openapi.yaml $(GEN_OUT)/descriptor/emporium.binpb

$(HELM):
	GOBIN=$(dir $@) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

deploy-files: ## Regenerate the chart's platform file and compose.yaml from services.yaml and services/.
	$(RUN) python -m deploy.generate

$(COMPOSE_SCHEMA):
	mkdir -p $(dir $@)
	dir=$$(cd $(dir $@) && GOFLAGS=-modcacherw $(GO) mod download -json \
	    github.com/compose-spec/compose-go/v2@$(COMPOSE_GO_VERSION) | \
	    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); cp "$$dir/schema/compose-spec.json" $@

deploy-check: $(COMPOSE_SCHEMA) ## Deploy files fresh, chart linted and valid, Dockerfile and compose.yaml checked.
	$(RUN) python -m deploy.generate --check
	$(MAKE) --no-print-directory chart-check
	EMPORIUM_COMPOSE_SCHEMA=$(COMPOSE_SCHEMA) $(RUN) python -m deploy.static_checks

# Lint, render with the default and the production values, validate every object offline and
# check that every service and the gateway have what the chart promises (deploy/chart_check.py).
chart-check: $(HELM)
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict -f $(CHART)/values-production.yaml $(CHART)
	$(RUN) python -m deploy.chart_check --helm $(HELM)

$(PROTOC_GEN_GO):
	GOBIN=$(dir $@) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12

$(PROTOC_GEN_GO_GRPC):
	GOBIN=$(dir $@) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

clients: $(PROTOC_GEN_GO) $(PROTOC_GEN_GO_GRPC) ## Build the example clients: Node (npm ci) and Go (stubs from protos/).
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	rm -rf clients/go/gen && mkdir -p clients/go/gen
	@echo "protoc-gen-go, protoc-gen-go-grpc: protos/ -> clients/go/gen"
	@$(PROTOC) -Iprotos -Iprotos/third_party \
	    --plugin=protoc-gen-go=$(PROTOC_GEN_GO) --plugin=protoc-gen-go-grpc=$(PROTOC_GEN_GO_GRPC) \
	    --go_out=clients/go/gen --go_opt='$(GO_CLIENT_OPTS)' \
	    --go-grpc_out=clients/go/gen --go-grpc_opt='$(GO_CLIENT_OPTS)' $(PROTO_FILES)
	cd clients/go && $(GO) build -o $(TOOLS)/emporium-go-client .

gen-check: ## Fail if gen/ differs from what the protos generate.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory gen GEN_OUT=$$tmp >/dev/null; \
	if ! diff -r -q gen $$tmp; then echo "gen/ is stale: run 'make gen' and commit it." >&2; exit 1; fi; \
	echo "gen/ is fresh."

lint: ## buf lint, buf format, buf breaking against main, ruff.
	$(BUF) lint
	$(BUF) format --diff --exit-code --path protos/emporium
	@if git cat-file -e main:protos/emporium 2>/dev/null; then \
	    echo "buf breaking --against '$(BREAKING_AGAINST)'"; \
	    $(BUF) breaking --against '$(BREAKING_AGAINST)'; \
	else echo "buf breaking: main has no protos yet, nothing to compare."; fi
	$(RUN) ruff check .
	$(RUN) ruff format --check .

fmt: ## Format protos and Python in place.
	$(BUF) format -w --path protos/emporium
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

test: setup lint gen-check deploy-check test-unit test-stack test-fuzz test-crash-extended ## Everything CI runs: lint, gen-check, every test tier.

test-unit: ## Unit and contract tests (no servers).
	$(RUN) pytest tests/unit

# The tiers below run against the real stack: `stack with` starts what is not running (and
# stops exactly that afterwards, pass or fail); a running `make run` or `make stack-up` is reused.
# Integration tests run services in-process and publish events of their own: they get the
# servers alone and a RabbitMQ virtual host of their own, so no stack service ever consumes
# (or queues up) their events.
INTEGRATION_VHOST := emporium-integration
test-stack: e2e-tools clients ## Integration and e2e tests, on the real servers, services and Envoy.
	$(STACK) with servers -- bash -c 'infra/local/bin/rabbitmq add-vhost $(INTEGRATION_VHOST) && \
	    EMPORIUM_RABBITMQ_URL="$${EMPORIUM_RABBITMQ_URL%/}/$(INTEGRATION_VHOST)" $(RUN) pytest tests/integration'
	$(STACK) with -- $(RUN) pytest -m "not crash" tests/e2e

# The first checkout crash test SIGKILLs the payment service and restarts the broker's
# application, so it gets a stack of its own on other ports (and its own data), started without
# payment, which it runs. Not in `make test`: the extended test below covers what it does.
CRASH_ENV := EMPORIUM_PORT_OFFSET=4700 EMPORIUM_VAR=$(CURDIR)/var/crash EMPORIUM_SHIPPING_CARRIER_STEP_SECONDS=1
test-crash: ## The checkout crash test: 50 orders, payment SIGKILLed, broker restarted.
	$(CRASH_ENV) $(STACK) with servers user catalog cart order shipping gateway -- \
	    $(RUN) pytest -s -m crash tests/e2e/test_checkout_crash.py

# The extended crash test (issue 11 item 6), in `make test`: it owns every process it kills and
# starts them itself: catalog, order, payment and shipping SIGKILLed, RabbitMQ stopped, Cassandra
# restarted, in 3 seeded runs. It bounds its own time (pytest-timeout, 40 min; 8 min at load 20).
test-crash-extended: ## The crash test: 3 seeded runs, every saga service SIGKILLed, broker and Cassandra restarted.
	EMPORIUM_PORT_OFFSET=4700 EMPORIUM_VAR=$(CURDIR)/var/crash-extended \
	    $(RUN) pytest -s -m crash tests/e2e/test_checkout_crash_extended.py

# Schemathesis against the gateway's OpenAPI document (issue 15 item 9), in `make test`: with an
# admin token it deletes and disables whatever it finds, so it gets a stack of its own on other
# ports and data of its own, deleted before each run. Two runs of FUZZ_SECONDS each (admin, then a
# fresh shopper); 0 server errors and 0 responses that break the document, or it fails.
FUZZ_ENV     := EMPORIUM_PORT_OFFSET=4900 EMPORIUM_VAR=$(CURDIR)/var/fuzz
FUZZ_SECONDS ?= 90
test-fuzz: ## Schemathesis on a stack of its own: admin and shopper runs, no 5xx, no response off the document.
	$(FUZZ_ENV) $(STACK) clean
	$(FUZZ_ENV) $(STACK) with -- $(RUN) python -m tests.fuzz --seconds $(FUZZ_SECONDS)

test-integration: ## Integration tests against the real servers.
	$(STACK) with servers -- bash -c 'infra/local/bin/rabbitmq add-vhost $(INTEGRATION_VHOST) && \
	    EMPORIUM_RABBITMQ_URL="$${EMPORIUM_RABBITMQ_URL%/}/$(INTEGRATION_VHOST)" $(RUN) pytest tests/integration'

test-e2e: e2e-tools clients ## End-to-end tests through Envoy (REST, gRPC, Swagger UI in Chromium).
	$(STACK) with -- $(RUN) pytest -m "not crash" tests/e2e

run: setup ## Start everything (servers, services, Envoy) in the foreground; Ctrl-C stops it.
	$(STACK) run $(ONLY)

stack-up: ## Start what is not running in the background; returns once all is healthy.
	$(STACK) up $(ONLY)

stack-down: ## Stop what stack-up started.
	$(STACK) down

stack-status: ## Health of each server, service and Envoy, and who started it.
	$(STACK) status

seed: ## Load demo data through the public API (categories, products, shoppers, orders).
	$(STACK) with -- $(RUN) python -m bench.seed

# Locust, headless and bounded: LOAD_USERS shoppers for LOAD_SECONDS, then the summary table.
LOAD_USERS   ?= 20
LOAD_SPAWN   ?= 5
LOAD_SECONDS ?= 60
load: ## Run the Locust load generator (bench/locustfile.py) headless and print its table.
	$(STACK) with -- $(RUN) locust -f bench/locustfile.py --headless --only-summary \
	    -u $(LOAD_USERS) -r $(LOAD_SPAWN) -t $(LOAD_SECONDS)s --stop-timeout 10

# The edge bench (issue 18): bare gRPC server, kit server, GetProduct direct, via Envoy (gRPC and
# REST), with a token, traced; BENCH_WORKERS=1,2 adds the catalog with two workers.
BENCH_SECONDS ?= 8
BENCH_WORKERS ?= 1,2
# The stack under the bench samples traces and access logs as production does (0.1): the local
# stack's 1.0 (for the e2e tests' whole checkouts) would measure span indexing, not the calls.
# The bench is one client address: the gateway's per-client limit (2000/s) would refuse it.
bench-edge: bench-tools ## Per-call costs from a bare gRPC server to GetProduct through Envoy: one table, one summary line.
	EMPORIUM_TRACE_SAMPLE_RATIO=0.1 EMPORIUM_ACCESS_LOG_SAMPLE=0.1 EMPORIUM_GATEWAY_CLIENT_REQUESTS_PER_SECOND=1000000 EMPORIUM_GATEWAY_CLIENT_REQUESTS_BURST=1000000 $(STACK) with servers user catalog logging gateway -- $(RUN) python -m bench.edge \
	    --seconds $(BENCH_SECONDS) --workers $(BENCH_WORKERS)

bench-tracing: bench-tools ## CPU per call of a catalog replica at a fixed rate, untraced vs traced, with the logging service and OpenSearch.
	EMPORIUM_TRACE_SAMPLE_RATIO=0.1 EMPORIUM_ACCESS_LOG_SAMPLE=0.1 $(STACK) with servers user catalog logging gateway -- $(RUN) python -m bench.tracing_cost

bench-checkout: ## The checkout saga under load on the whole stack, at production's trace and access log sampling.
	EMPORIUM_TRACE_SAMPLE_RATIO=0.1 EMPORIUM_ACCESS_LOG_SAMPLE=0.1 $(STACK) with -- $(RUN) python -m bench.checkout

clean-data: ## Delete the servers' data and everything else in var/ (refuses while running).
	$(STACK) clean

# Refreshes the files already vendored; to vendor a new one, copy it in once by hand.
vendor-protos: ## Refresh the vendored googleapis protos from the pinned googleapis-common-protos.
	site=$$($(RUN) python -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))'); \
	cd protos/third_party && for f in $$(find google -name '*.proto'); do cp $$site/$$f $$f; done

clean: ## Remove local tool installs and caches.
	rm -rf .tools .venv .pytest_cache .ruff_cache
