#!/usr/bin/env bash
# The execution environment's build context, offline: this collection's
# tarball, then `ansible-builder create` from execution-environment.yml.
# Writes .cache/ee/context (Containerfile and _build/); building the image
# needs a registry for the base image, which is the operator's step:
#   podman build -t <registry>/agentops/ee:<version> .cache/ee/context
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${VENV:-.venv}/bin
out=.cache/ee

rm -rf "$out" && mkdir -p "$out/build"
"$bin/ansible-galaxy" collection build --output-path "$out/build" . >/dev/null
# execution-environment.yml names the tarball without its version.
mv "$out"/build/agentops-deploy-*.tar.gz "$out/agentops-deploy.tar.gz"
rmdir "$out/build"
"$bin/ansible-builder" create --file execution-environment.yml --context "$out/context" \
  --output-filename Containerfile >/dev/null
echo "ee-context: $out/context (build it with: podman build -t <image> $out/context)"
