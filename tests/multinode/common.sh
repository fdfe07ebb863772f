# Shared by the multinode tests (sourced): the checks before a test, its cleanup, and comparisons.
# Expects: vtb (absolute), here (tests/multinode) and work set by the test.

cluster=$here/cluster.sh
vtb_run=$(dirname "$vtb")/vtb-run
timeout_s=5  # dist.timeout_s of every run the tests break

need_root_and_tools() {  # tools...
  if (($(id -u) != 0)); then echo "SKIP: needs root (network namespaces)"; exit 77; fi
  for tool in "$@"; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
      { echo "SKIP: $tool is not installed (bash scripts/install-deps.sh)"; exit 77; }
  done
}

# Removes the test hosts and checks that nothing is left: no namespace, no process inside one, no mount
# (the namespace files, the bind-mounted hosts files and node /tmp folders live in private mount namespaces).
remove_cluster() {
  "$cluster" down || { echo "FAIL: the test hosts were not removed"; exit 1; }
  local left; left=$(ip netns list | grep -c '^vtb-node' || true)
  ((left == 0)) || { echo "FAIL: $left test namespaces left behind"; exit 1; }
  if pgrep -fa "orted|$cluster (on|agent)"; then echo "FAIL: processes left behind (above)"; exit 1; fi
  if grep -E 'vtb-node|/etc/netns/vtb' /proc/self/mountinfo; then echo "FAIL: mounts left behind (above)"; exit 1; fi
}

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log "$work"/*.out "${extra_logs[@]}"; do
    [[ -f $f ]] && { echo "---- $f"; tail -15 "$f" | cut -c1-400; }
  done
  exit 1
}
extra_logs=()

# Per-step losses of two runs equal, bit for bit.
same_losses() {  # run_a run_b
  /usr/bin/python3 - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'PY'
import json, sys
a, b = ([(j["step"], j["loss"]) for j in map(json.loads, open(f))] for f in sys.argv[1:])
bad = [(x, y) for x, y in zip(a, b) if x != y]
if len(a) != len(b) or bad: print("differ:", len(a), len(b), bad[:3]); sys.exit(1)
PY
}

# Median step time after the first 5 steps.
median_step() {
  /usr/bin/python3 -c "import json, statistics, sys; print('%.3f' % statistics.median(j['step_s'] for j in map(json.loads, open(sys.argv[1])) if j['step'] > 5))" "$1/metrics.jsonl"
}

# Seconds since a `date +%s.%N` stamp, one decimal.
seconds_since() { /usr/bin/python3 -c "import sys, time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$1"; }

# Waits until checkpoint 20 of a run is committed and the run is past it (or its job has ended).
wait_past_step_20() {  # run_dir, pid or a command that says whether the job still runs
  local run=$1 alive=$2
  for ((i = 0; i < 900; ++i)); do
    [[ $(cat "$run/latest" 2>/dev/null) == step_00000020 && $(wc -l <"$run/metrics.jsonl") -ge 24 ]] && return 0
    $alive || return 1
    sleep 0.1
  done
  return 1
}
