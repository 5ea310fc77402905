#!/usr/bin/env bash
# `make test`: every layer, timed, one after the other, stopping at the first
# that fails; the table of wall times ends the output, passed or not.
#
# The Lambda layer runs beside the Kubernetes one: the cluster's tests wait
# on pods most of their time, and moto's functions are short containers
# (its output in $CACHE/lambda.log, printed when both end).
#
# AGENTOPS_TEST_LANES=2 runs two lanes side by side instead:
#   lane 1: lint, sanity, unit, integration, k8s (and lambda), Molecule (it stops at its first
#           failure)
#   lane 2: the end-to-end layer (builds its own lab, runs tests/e2e, removes
#           the lab), its output in $CACHE/e2e.log, printed when both end
# It is not the default: on 2 cores every layer runs about twice as slow
# beside the other lane (the end-to-end story 1214 s against 565 s alone), so
# the whole takes about as long, and each layer's timing-bound checks see a
# machine far busier than the one they were written on (see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.cache
e2e_log=$cache/e2e.log
mkdir -p "$cache"

layer() { bash scripts/test-times.sh time layer "$1" make --no-print-directory "$1"; }

# The k8s layer with the lambda layer beside it; fails when either did.
k8s_and_lambda() {
  local lambda_log=$cache/lambda.log lambda_pid k8s=0 lambda=0
  layer lambda >"$lambda_log" 2>&1 &
  lambda_pid=$!
  layer k8s || k8s=$?
  wait "$lambda_pid" || lambda=$?
  echo "---- the Lambda layer, run beside the Kubernetes one ($lambda_log) ----"
  cat "$lambda_log"
  echo "---- end of the Lambda layer ----"
  [ "$k8s" = 0 ] && [ "$lambda" = 0 ]
}

start=$(date +%s)
outcome=FAILED
report() {
  bash scripts/test-times.sh record total "make test (wall time)" "$(( $(date +%s) - start ))" "$outcome"
  bash scripts/test-times.sh report
}
trap report EXIT

layer setup

if [ "${AGENTOPS_TEST_LANES:-1}" != 2 ]; then
  for name in lint sanity unit integration; do
    layer "$name"
  done
  k8s_and_lambda
  for name in molecule e2e; do
    layer "$name"
  done
  outcome=passed
  echo "make test: all layers passed"
  exit 0
fi

# Both lanes load the docker_agent base image: build it once, before they split.
make --no-print-directory agent-base

echo "make test: the end-to-end layer runs beside the others; its output goes to $e2e_log and is printed when it ends"
layer e2e >"$e2e_log" 2>&1 &
e2e_pid=$!

lane1=passed
for name in lint sanity unit integration k8s_and_lambda molecule; do
  if ! { if [ "$name" = k8s_and_lambda ]; then k8s_and_lambda; else layer "$name"; fi; }; then
    lane1="FAILED at $name"
    echo "make test: $name failed; waiting for the end-to-end layer to finish and remove its lab"
    break
  fi
done

# Whatever failed, lane 2 is waited for, so its own trap removes its lab.
if wait "$e2e_pid"; then e2e=passed; else e2e=FAILED; fi
echo
echo "---- the end-to-end layer ($e2e_log): $e2e ----"
cat "$e2e_log"
echo "---- end of the end-to-end layer ----"

if [ "$lane1" = passed ] && [ "$e2e" = passed ]; then
  outcome=passed
  echo "make test: all layers passed"
else
  echo "make test: lint..molecule $lane1; end to end $e2e"
  exit 1
fi
