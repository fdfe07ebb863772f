# Shared by the test clusters' scripts (sourced): tests/slurm/local_slurm.sh, tests/multinode/slurm_cluster.sh.
# Expects `dir` (the cluster's private folder) and `me` (the script's name, for messages).

wait_for() {  # seconds, description, command...
  local limit=$1 what=$2; shift 2
  for ((i = 0; i < limit * 10; ++i)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$me: $what did not happen within ${limit}s" >&2
  return 1
}

# munged, unless one already answers. It runs as munge and writes its pid file itself, so the file goes in
# a folder munge owns (it cannot write the root-owned run/); stop_munged ends only a munged started here.
start_munged() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
  mkdir -p /run/munge "$dir/run/munge"
  chown munge:munge /run/munge "$dir/run/munge"
  su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=$dir/run/munge/munged.pid" || true
  wait_for 10 "munged answering" bash -c 'munge -n | unmunge'
}
munged_pid_file() { echo "$dir/run/munge/munged.pid"; }
