#!/usr/bin/env bash
# The wall time of each layer, scenario and end-to-end test of `make test`,
# so that growth shows at once. Records go to $AGENTOPS_TEST_TIMES (one line
# each: kind, name, seconds, outcome, and for what `time` ran the machine's
# CPUs busy over that time, in %); `report` prints them as a table and
# writes it next to them as test-times.txt, which CI prints. A layer that
# leaves the CPUs idle is one another can run beside.
# Usage: test-times.sh time <kind> <name> <command ...>   run and record
#        test-times.sh record <kind> <name> <seconds> <outcome>
#        test-times.sh report
set -euo pipefail

# Busy and total jiffies of all CPUs since boot (/proc/stat's first line).
cpu_jiffies() {
  local _cpu user nice system idle iowait irq softirq steal _rest
  read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
  echo "$(( user + nice + system + irq + softirq + steal )) $(( user + nice + system + idle + iowait + irq + softirq + steal ))"
}

records="${AGENTOPS_TEST_TIMES:-.cache/test-times.tsv}"
mkdir -p "$(dirname "$records")"

case "${1:-}" in
  time)
    kind=$2 name=$3
    shift 3
    start=$(date +%s)
    read -r busy_before total_before < <(cpu_jiffies)
    if "$@"; then rc=0; else rc=$?; fi
    read -r busy_after total_after < <(cpu_jiffies)
    busy=$(( 100 * (busy_after - busy_before) / (total_after - total_before > 0 ? total_after - total_before : 1) ))
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$name" "$(( $(date +%s) - start ))" "$([ "$rc" = 0 ] && echo passed || echo FAILED)" \
      "$busy" >>"$records"
    exit "$rc"
    ;;
  record)
    printf '%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" >>"$records"
    ;;
  report)
    [ -s "$records" ] || exit 0
    table="$(dirname "$records")/test-times.txt"
    {
      echo "make test: wall time of each part (s), in the order they ended; scenarios and tests run"
      echo "inside their layer (scripts/test-all.sh); cpu: the machine's CPUs busy meanwhile"
      awk -F'\t' '{ printf "  %-9s %-74s %6d  %-7s %s\n", $1, $2, $3, $4, ($5 == "" ? "" : "cpu " $5 "%") }' "$records"
    } >"$table"
    cat "$table"
    ;;
  *)
    echo "usage: $0 time <kind> <name> <command ...> | record <kind> <name> <seconds> <outcome> | report" >&2
    exit 2
    ;;
esac
