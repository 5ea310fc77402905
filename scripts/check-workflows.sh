#!/usr/bin/env bash
# check-workflows.sh: check the GitHub Actions workflows offline.
#
#   scripts/check-workflows.sh [FILE...]
#
# Without arguments: .github/workflows/*.yml and examples/cicd/*.yml, from the
# repository root. Each file is validated against the GitHub workflow schema
# (check-jsonschema --builtin-schema vendor.github-workflows), then audited by
# zizmor --offline (unpinned actions, template injection, persisted
# credentials, excessive permissions, ...). Any schema error or any zizmor
# finding, informational ones included, fails the script. The tools come from
# ${VENV:-.venv}/bin (requirements.txt installs them).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin="${VENV:-.venv}/bin"
for tool in check-jsonschema zizmor; do
  if [[ ! -x "$bin/$tool" ]]; then
    echo "check-workflows: $bin/$tool is missing (make setup, or set VENV)" >&2
    exit 2
  fi
done

if (($# > 0)); then
  files=("$@")
else
  shopt -s nullglob
  files=(.github/workflows/*.yml examples/cicd/*.yml)
  shopt -u nullglob
fi
if ((${#files[@]} == 0)); then
  echo "check-workflows: no workflow files found" >&2
  exit 2
fi

failed=0
for file in "${files[@]}"; do
  log="$(mktemp)"
  if "$bin/check-jsonschema" --builtin-schema vendor.github-workflows "$file" >"$log" 2>&1 \
    && "$bin/zizmor" --offline --no-progress --color=never --min-severity=informational \
      "$file" >>"$log" 2>&1; then
    echo "ok    $file"
  else
    echo "FAIL  $file"
    sed 's/^/      /' "$log"
    failed=1
  fi
  rm -f "$log"
done

if ((failed)); then
  echo "check-workflows: some workflows failed (see above)" >&2
fi
exit "$failed"
