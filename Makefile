# agentops.deploy — every target does its own set-up, so on a fresh Debian 12
# machine `make lab` and `make test` are the only two commands needed.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := .cache
AGENT_VENV := $(CACHE)/agent-venv
COLLECTION_LINK := .collections/ansible_collections/agentops/deploy
SANITY_ROOT := $(CACHE)/sanity/ansible_collections/agentops/deploy
# Ansible content and our tooling; files/agent is an application with its
# own tests and linting, not Ansible code.
SANITY_TARGETS := plugins/ roles/ playbooks/ meta/ tests/ scripts/ extensions/ changelogs/
# Scenarios run side by side; each owns its own containers.
export MOLECULE_WORKERS ?= 3
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup venv agent-venv link engine image promtool e2e agent-base lab lab-down lab-k8s lab-k8s-down test lint sanity unit unit-plugins unit-agent integration k8s lambda molecule bench lock ee-context clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# --- set-up -----------------------------------------------------------------

$(BIN)/.installed: requirements.txt
	@echo "setup: creating the controller virtualenv in $(VENV) (requirements.txt)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed ## Controller virtualenv with requirements.txt

$(AGENT_VENV)/.installed: files/agent/requirements.txt files/agent/requirements-dev.txt
	@echo "setup: creating the agent's test virtualenv in $(AGENT_VENV)"
	$(PYTHON) -m venv $(AGENT_VENV)
	$(AGENT_VENV)/bin/pip install --quiet --upgrade pip
	$(AGENT_VENV)/bin/pip install --quiet -r files/agent/requirements.txt -r files/agent/requirements-dev.txt
	touch $@

agent-venv: $(AGENT_VENV)/.installed

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

link: $(COLLECTION_LINK) ## Make agentops.deploy.* resolve to this checkout

engine: ## Make sure a Docker Engine answers (installs docker.io, starts dockerd)
	@bash scripts/ensure-docker.sh

image: engine ## Build the test-host image unless its recipe is unchanged
	@bash scripts/testhost-image.sh >/dev/null

# promtool from Debian's prometheus package, unpacked, not installed: the
# rule tests need the binary, not a Prometheus server on the controller.
PROMTOOL := $(CACHE)/tools/promtool/usr/bin/promtool
$(PROMTOOL):
	@echo "setup: unpacking promtool from Debian's prometheus package into $(CACHE)/tools"
	mkdir -p $(CACHE)/tools/download
	cd $(CACHE)/tools/download && { apt-get download prometheus 2>/dev/null || { apt-get update -qq && apt-get download prometheus; }; }
	dpkg-deb -x $(CACHE)/tools/download/prometheus_*.deb $(CACHE)/tools/promtool
	rm -rf $(CACHE)/tools/download
	touch $@

promtool: $(PROMTOOL) ## promtool for the alert rule tests

setup: venv link engine image ## Everything the lab and the tests need

# --- the lab ----------------------------------------------------------------

agent-base: engine ## The docker_agent base image, as an archive in ~/.cache/agentops
	@bash scripts/agent-base-image.sh >/dev/null

lab: setup agent-base ## Create the local lab (systemd containers) and run site.yml on it
	@start=$$(date +%s); \
	$(BIN)/ansible-playbook -i inventories/lab playbooks/lab.yml; \
	$(BIN)/ansible-playbook -i inventories/lab site.yml; \
	$(BIN)/ansible-playbook -i inventories/lab playbooks/health.yml; \
	echo; \
	echo "lab: ready in $$(( $$(date +%s) - start )) s. Open:"; \
	echo "  agents        http://127.0.0.1:8001  :8002  :8003   (/health /ready /metrics, POST /api/agent)"; \
	echo "  try           curl -s -XPOST 127.0.0.1:8001/api/agent -H 'content-type: application/json' -d '{\"input\":\"hello lab\"}'"; \
	echo "  load balancer http://127.0.0.1:8080   (HAProxy on ops-1 in front of the three agents)"; \
	echo "  Prometheus    http://127.0.0.1:9090/targets   alerts: http://127.0.0.1:9090/alerts"; \
	echo "  Alertmanager  http://127.0.0.1:9093"; \
	echo "  health        $(BIN)/ansible-playbook -i inventories/lab playbooks/health.yml"; \
	echo "  remove it     make lab-down"

lab-down: venv link ## Remove the lab containers
	$(BIN)/ansible-playbook -i inventories/lab playbooks/lab.yml -e lab_state=absent

# The Kubernetes method on the single-node cluster of the tests (docs/kubernetes.md).
lab-k8s: setup ## Start a single-node Kubernetes and deploy the agent on it with deploy.yml
	@start=$$(date +%s); \
	bash scripts/k8s-node.sh start; \
	$(BIN)/python scripts/k8s-agent-images.py --load >/dev/null; \
	bash scripts/k8s-node.sh exec $(BIN)/ansible-playbook -i inventories/lab-k8s playbooks/deploy.yml -e agent_rollout_force=true; \
	echo; \
	echo "lab-k8s: ready in $$(( $$(date +%s) - start )) s. Inside the cluster's network (scripts/k8s-node.sh exec ...):"; \
	echo "  pods          scripts/k8s-node.sh exec kubectl -n agents get pods,svc,hpa,pdb"; \
	echo "  try           scripts/k8s-node.sh exec curl -s -XPOST http://\$$(scripts/k8s-node.sh exec kubectl -n agents get svc smart-agent -o jsonpath='{.spec.clusterIP}')/api/agent -H 'content-type: application/json' -d '{\"input\":\"hello cluster\"}'"; \
	echo "  deploy        scripts/k8s-node.sh exec .venv/bin/ansible-playbook -i inventories/lab-k8s playbooks/deploy.yml -e agent_version=1.1.0"; \
	echo "  roll back     scripts/k8s-node.sh exec .venv/bin/ansible-playbook -i inventories/lab-k8s playbooks/rollback.yml"; \
	echo "  remove it     make lab-k8s-down"

lab-k8s-down: ## Stop the single-node Kubernetes of make lab-k8s
	bash scripts/k8s-node.sh stop

# The trap removes the lab whatever happens after its first container: a
# failed site.yml or test, or an interrupt. AGENTOPS_E2E_LAB=built: the lab
# was just built by `make lab` (make test builds it beside the Kubernetes
# layer, scripts/test-all.sh), and the tests run on it as they would on a
# lab of their own.
e2e: setup agent-base ## The playbooks end to end on a fresh lab (removes the lab afterwards)
	trap '$(MAKE) --no-print-directory lab-down >/dev/null' EXIT; \
	if [ "$${AGENTOPS_E2E_LAB:-new}" != built ]; then \
	  bash scripts/test-times.sh time e2e "the lab (make lab)" $(MAKE) --no-print-directory lab; \
	fi; \
	$(BIN)/python -m pytest -q -s --durations=0 tests/e2e

# --- tests ------------------------------------------------------------------

# Every layer, timed (scripts/test-times.sh), one after the other, or in two
# lanes with AGENTOPS_TEST_LANES=2 (scripts/test-all.sh says why it is not
# the default); the table of wall times ends the output, passed or not, and
# stays in $(CACHE)/test-times.txt.
export AGENTOPS_TEST_TIMES := $(CURDIR)/$(CACHE)/test-times.tsv
test: ## Lint, sanity, unit, integration, Kubernetes node, Lambda (moto), Molecule and end-to-end tests (AGENTOPS_TEST_LANES=2: end to end beside the rest)
	@rm -f $(AGENTOPS_TEST_TIMES)
	@bash scripts/test-all.sh

lint: venv link ## ansible-lint (production profile); the GitHub workflows: schema and zizmor, offline
	$(BIN)/ansible-lint --profile production
	bash scripts/check-workflows.sh

sanity: venv ## ansible-test sanity on a copy laid out as ansible_collections/agentops/deploy
	@command -v shellcheck >/dev/null || { echo "setup: installing shellcheck (apt-get) for the shellcheck sanity test"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; }
	@# ansible-test --venv downloads get-pip.py, which these machines cannot
	@# reach; it looks for a cached copy named after the pip version it pins.
	@# That version is only in ansible-test's private python_requirements
	@# (get_venv_packages): no public option, command or file states it.
	@pip_version=$$($(BIN)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages; \
	  from ansible_test._internal.host_configs import NativePythonConfig; \
	  print(get_venv_packages(NativePythonConfig(version="3.11"))["pip"])'); \
	  mkdir -p ~/.ansible/test/cache; \
	  cp scripts/ansible-test-get-pip.py ~/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	git ls-files -z --cached --others --exclude-standard \
	  | tar --null --ignore-failed-read -T - -cf - | tar -C $(SANITY_ROOT) -xf -
	# ansible-test lists a collection's files with git; the copy sits in this
	# checkout's ignored .cache, so it gets a repository of its own.
	cd $(SANITY_ROOT) && git init -q && git add -A \
	  && $(CURDIR)/$(BIN)/ansible-test sanity --venv --python 3.11 --color no $(SANITY_TARGETS)

unit: unit-plugins unit-agent ## pytest: modules, module_utils, tooling and the agent

unit-plugins: venv link promtool agent-venv
	$(BIN)/python -m pytest -q tests/unit

unit-agent: agent-venv
	cd files/agent && $(CURDIR)/$(AGENT_VENV)/bin/python -m pytest -q

integration: venv link ## Collection build and install, role input validation (no containers)
	$(BIN)/python -m pytest -q tests/integration

# A real single-node Kubernetes 1.20 (scripts/k8s-node.sh; its binaries are
# built once from Debian's source package and cached, scripts/k8s-binaries.sh).
k8s: setup ## The Kubernetes node the Kubernetes method is tested on, started, used and stopped
	$(BIN)/python -m pytest -q -s tests/k8s

# AWS Lambda as moto server plays it, the functions run in Docker in a Lambda
# runtime image built locally (scripts/lambda-runtime-image.sh, cached).
lambda: setup ## The Lambda method against moto server, its functions really run
	$(BIN)/python -m pytest -q -s tests/lambda

molecule: setup ## Every Molecule scenario (or SCENARIOS="a b"), MOLECULE_WORKERS at a time
	bash scripts/molecule-all.sh $(SCENARIOS)

bench: setup agent-venv ## Benchmarks that print measured figures (lab_timings builds the lab; faulty_releases and rollout_downtime then use it)
	$(AGENT_VENV)/bin/python bench/agent_throughput
	$(BIN)/python bench/module_runs
	$(BIN)/python bench/lab_timings
	$(BIN)/python bench/faulty_releases
	$(BIN)/python bench/rollout_downtime

# The agent's dependency lock, with hashes: what releases and the Docker build
# install, from the controller's wheelhouse. Upgrades within requirements.txt.
lock: venv ## Regenerate files/agent/requirements.lock (pinned, hashed) from requirements.txt
	cd files/agent && $(CURDIR)/$(BIN)/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe \
	  --strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.lock requirements.txt

# The execution environment AWX runs the job templates in (docs/awx.md):
# the build context, made offline; building the image needs its base image's
# registry.
ee-context: venv ## Execution environment build context in .cache/ee/context (ansible-builder create)
	bash scripts/ee-context.sh

clean: ## Remove local state (virtualenvs, caches, built tarballs)
	rm -rf $(VENV) $(CACHE) .collections agentops-deploy-*.tar.gz
