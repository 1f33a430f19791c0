#!/usr/bin/env bash
# The test suite beside CPU hogs (issue 22, item 4): `scripts/suite-under-load.sh [MAJOR [RUNS [HOGS]]]` runs
# `npx vitest run` RUNS times (default 3) on Node MAJOR (default: the machine's) while HOGS busy loops (default 2,
# one per core of the CI machine) compete for the CPU, and prints each run's outcome and the failed tests. A test
# that fails here but passes alone depends on timing that load stretches: it should await the event instead.
# Other majors come from the same cache as .ci/run's (NODE_CACHE), which must have installed them.
set -uo pipefail
cd "$(dirname "$0")/.."
major=${1:-$(node -p 'process.versions.node.split(".")[0]')}
runs=${2:-3}
hogs=${3:-2}
NODE_CACHE="${NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gcs-resumable-stream/node}"
bin=$(dirname "$(command -v node)")
if [[ $(node -p 'process.versions.node.split(".")[0]') != "$major" ]]; then
  bin="$NODE_CACHE/n$major/node_modules/node-$(node -p 'process.platform')-$(node -p 'process.arch')/bin"
  [[ -x $bin/node ]] || { echo "no Node $major under $NODE_CACHE: run .ci/run once" >&2; exit 2; }
fi
pids=()
for _ in $(seq "$hogs"); do
  node -e 'for (;;) {}' &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
failed=0
for run in $(seq "$runs"); do
  log=$(mktemp)
  t0=$SECONDS
  if PATH="$bin:$PATH" npx vitest run >"$log" 2>&1; then
    echo "Node $("$bin/node" --version) run $run/$runs: passed in $((SECONDS - t0)) s ($(grep -Eo 'Tests +[0-9]+ passed[^)]*' "$log" | head -1))"
  else
    failed=1
    echo "Node $("$bin/node" --version) run $run/$runs: FAILED in $((SECONDS - t0)) s; kept $log"
    grep -E '^ *(FAIL|×)' "$log" | sed 's/\x1b\[[0-9;]*m//g' | sort -u | head -20
  fi
done
exit $failed
