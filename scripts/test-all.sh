#!/usr/bin/env bash
# `make test`: every layer, timed, stopping at the first that fails; the
# table of wall times ends the output, passed or not.
#
# Layers that leave a core idle run in pairs (the table's cpu column shows
# which do): lint beside unit, sanity beside integration (each one Python
# process at a time), and Lambda beside Kubernetes (the cluster's tests wait
# on pods most of their time, and moto's functions are short containers).
# The second of a pair writes to $CACHE/<layer>.log, printed when both end.
# Molecule and the end-to-end layer keep both cores busy alone: beside
# another layer each runs about twice as slow, and the whole takes longer
# (Molecule beside Kubernetes and Lambda: venv_systemd 837 s against 430 s
# alone, docker_agent 937 s against 520 s, the Kubernetes layer 725 s
# against 380 s).
#
# AGENTOPS_TEST_LANES=2 runs two lanes side by side instead:
#   lane 1: the pairs above, then Molecule (it stops at its first failure)
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

# Layer $1 with layer $2 beside it; fails when either did.
side_by_side() {
  local first=$1 second=$2 second_log=$cache/$2.log second_pid first_rc=0 second_rc=0
  layer "$second" >"$second_log" 2>&1 &
  second_pid=$!
  layer "$first" || first_rc=$?
  wait "$second_pid" || second_rc=$?
  echo "---- the $second layer, run beside the $first one ($second_log) ----"
  cat "$second_log"
  echo "---- end of the $second layer ----"
  [ "$first_rc" = 0 ] && [ "$second_rc" = 0 ]
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
  side_by_side lint unit
  side_by_side sanity integration
  side_by_side k8s lambda
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
for pair in "lint unit" "sanity integration" "k8s lambda" molecule; do
  # shellcheck disable=SC2086 # a pair is two words
  if ! { if [ "$pair" = molecule ]; then layer molecule; else side_by_side $pair; fi; }; then
    lane1="FAILED at $pair"
    echo "make test: $pair failed; waiting for the end-to-end layer to finish and remove its lab"
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
