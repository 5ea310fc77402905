#!/usr/bin/env bash
# `make test`: every layer, timed, in two lanes side by side; the table of
# wall times ends the output, passed or not.
#   lane 1: lint, sanity, unit, integration, Molecule (it stops at its first
#           failure)
#   lane 2: the end-to-end layer (builds its own lab, runs tests/e2e, removes
#           the lab), its output in $CACHE/e2e.log, printed when both end
# The end-to-end layer spends about a third of its time waiting on its
# deploys with the CPU idle, and lane 1 fills it. AGENTOPS_TEST_LANES=1 runs
# the layers one after the other instead, stopping at the first that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.cache
e2e_log=$cache/e2e.log
mkdir -p "$cache"

layer() { bash scripts/test-times.sh time layer "$1" make --no-print-directory "$1"; }

start=$(date +%s)
outcome=FAILED
report() {
  bash scripts/test-times.sh record total "make test (wall time)" "$(( $(date +%s) - start ))" "$outcome"
  bash scripts/test-times.sh report
}
trap report EXIT

layer setup

if [ "${AGENTOPS_TEST_LANES:-2}" != 2 ]; then
  for name in lint sanity unit integration molecule e2e; do
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
for name in lint sanity unit integration molecule; do
  if ! layer "$name"; then
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
