#!/usr/bin/env bash
# `make test`: every layer, timed, stopping at the first that fails; the
# table of wall times ends the output, passed or not.
#
# Layers that leave a core idle run beside another (the table's cpu column
# shows which do): lint beside unit, sanity beside integration (each one
# Python process at a time), Lambda and then the end-to-end layer's lab
# beside Kubernetes (the cluster's tests wait on pods most of their time,
# moto's functions are short containers, and Lambda ends minutes before
# Kubernetes does: the lab's build fills that time). What runs beside
# writes to $CACHE/<part>.log, printed when both end. The end-to-end tests
# then run on that lab, right after, so no other layer runs beside it idle.
# Molecule and the end-to-end tests run alone, one after the other:
# beside Kubernetes and Lambda both ran far slower and the whole took longer
# (Molecule: venv_systemd 837 s against 430 s alone, docker_agent 937 s
# against 520 s; the end-to-end layer: the lab 597 s against 202 s, Lambda
# 980 s against 341 s, the machine 99 % busy throughout).
#
# AGENTOPS_TEST_LANES=2 runs two lanes side by side instead:
#   lane 1: lint+unit, sanity+integration, k8s+lambda, then Molecule (it stops
#           at its first failure)
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

# The lab is timed as the end-to-end layer's; its marker makes the exit
# remove it, whatever ends the run before the end-to-end layer does.
lab_marker=$cache/lab-built-by-test
layer() {
  case $1 in
    lab)
      touch "$lab_marker"
      bash scripts/test-times.sh time e2e "the lab (make lab)" make --no-print-directory lab ;;
    e2e)
      # make e2e removes the lab it tested, passed or not.
      local rc=0
      AGENTOPS_E2E_LAB=$([ -f "$lab_marker" ] && echo built || echo new) \
        bash scripts/test-times.sh time layer e2e make --no-print-directory e2e || rc=$?
      rm -f "$lab_marker"
      return "$rc" ;;
    *) bash scripts/test-times.sh time layer "$1" make --no-print-directory "$1" ;;
  esac
}

# A part of the run: one layer; "A+B..." for layer A with the part B...
# beside it (B's output in $cache/B....log, printed when both end), failing
# when either did; "A,B..." for A, then B... when A passed.
part() {
  case $1 in
    *+*) side_by_side "${1%%+*}" "${1#*+}" ;;
    *,*) part "${1%%,*}" && part "${1#*,}" ;;
    *) layer "$1" ;;
  esac
}

side_by_side() {
  local first=$1 second=$2 second_log=$cache/$2.log second_pid first_rc=0 second_rc=0
  part "$second" >"$second_log" 2>&1 &
  second_pid=$!
  layer "$first" || first_rc=$?
  wait "$second_pid" || second_rc=$?
  echo "---- $second, run beside $first ($second_log) ----"
  cat "$second_log"
  echo "---- end of $second ----"
  [ "$first_rc" = 0 ] && [ "$second_rc" = 0 ]
}

start=$(date +%s)
outcome=FAILED
report() {
  if [ -f "$lab_marker" ]; then
    make --no-print-directory lab-down >/dev/null 2>&1 || true
    rm -f "$lab_marker"
  fi
  bash scripts/test-times.sh record total "make test (wall time)" "$(( $(date +%s) - start ))" "$outcome"
  bash scripts/test-times.sh report
}
trap report EXIT

rm -f "$lab_marker"
layer setup

if [ "${AGENTOPS_TEST_LANES:-1}" != 2 ]; then
  for group in lint+unit sanity+integration k8s+lambda,lab e2e molecule; do
    part "$group"
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
for group in lint+unit sanity+integration k8s+lambda molecule; do
  if ! part "$group"; then
    lane1="FAILED at $group"
    echo "make test: $group failed; waiting for the end-to-end layer to finish and remove its lab"
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
