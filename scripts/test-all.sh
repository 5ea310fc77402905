#!/usr/bin/env bash
# `make test`: every layer, in two lanes side by side.
#   lane 1: lint, sanity, unit, integration, Molecule (in that order; it stops
#           at its first failure)
#   lane 2: the end-to-end layer (builds its own lab, runs tests/e2e, removes
#           the lab)
# Why two lanes: the end-to-end layer spends about a third of its time waiting
# on its deploys (trials, bakes, drains) with the CPU idle, and the other
# layers fill that time. One after the other, the suite took 48 minutes on a
# 2-core machine.
# Lane 1 prints as it goes. Lane 2 writes $CACHE/e2e.log, printed when both
# lanes have ended. Whatever fails, lane 2 is waited for, so its lab is
# always removed by its own trap. The table of wall times ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=.cache
e2e_log=$cache/e2e.log
mkdir -p "$cache"

layer() { bash scripts/test-times.sh time layer "$1" make --no-print-directory "$1"; }

start=$(date +%s)
outcome=FAILED
report() {
  bash scripts/test-times.sh record total "make test (wall time, lanes side by side)" "$(( $(date +%s) - start ))" "$outcome"
  bash scripts/test-times.sh report
}
trap report EXIT

layer setup
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
