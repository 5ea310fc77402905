#!/usr/bin/env bash
# Runs every Molecule scenario under extensions/molecule, several at a time.
# Each scenario owns its containers, so scenarios run side by side as
# separate `molecule test` processes (molecule's own --workers mode would make
# them share one set of hosts). Logs go to .cache/molecule/<scenario>.log;
# the tail of a failed scenario's log is printed. Exit status: failures.
# Usage: molecule-all.sh [scenario ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

workers="${MOLECULE_WORKERS:-3}"
logs=.cache/molecule
mkdir -p "$logs"
# molecule and the ansible it runs come from the controller venv.
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$PWD/.collections}"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  # Longest first, so the slow scenarios do not start last.
  mapfile -t scenarios < <(
    for f in extensions/molecule/*/molecule.yml; do
      name=$(basename "$(dirname "$f")")
      weight=$(cat "$(dirname "$f")"/*.yml | wc -l)
      echo "$weight $name"
    done | sort -rn | cut -d' ' -f2)
fi

run_one() {
  local name=$1 start rc
  start=$(date +%s)
  if molecule --base-config extensions/molecule/config.yml test -s "$name" >"$logs/$name.log" 2>&1; then rc=0; else rc=$?; fi
  echo "$name $rc $(( $(date +%s) - start ))" >>"$results"
  bash scripts/test-times.sh record scenario "molecule $name" "$(( $(date +%s) - start ))" "$([ "$rc" = 0 ] && echo passed || echo FAILED)"
  printf 'molecule: %-16s %s in %ss\n' "$name" "$([ "$rc" = 0 ] && echo passed || echo FAILED)" "$(( $(date +%s) - start ))"
}
export -f run_one
export logs results

echo "molecule: ${#scenarios[@]} scenarios, $workers at a time: ${scenarios[*]}"
printf '%s\n' "${scenarios[@]}" | xargs -P "$workers" -I{} bash -c 'run_one "$@"' _ {}

passed=0 failed=0
while read -r name rc _; do
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "---- $name failed; what failed, from $logs/$name.log:"
    sed 's/\x1b\[[0-9;]*m//g' "$logs/$name.log" | grep -E -A25 'fatal:|Traceback|CRITICAL' | head -150
  fi
done <"$results"
echo "molecule: $passed passed, $failed failed"
[ "$failed" = 0 ]
