#!/usr/bin/env bash
# vtb across two nodes: test hosts node1 and node2 in network namespaces (cluster.sh), ranks launched
# by vtb-run (mpirun with Open MPI's rsh launcher, cluster.sh as its agent in place of ssh), talking
# over TCP on the veth link only (btl tcp,self: no shared memory between the nodes).
#   1. the dist check across the link: Open MPI's TCP transport connects 192.0.2.1 <-> 192.0.2.2 (its own
#      verbose log says so) and every collective is exact;
#   2. a 2-node run of `tiny` (2 × 1 rank) equals, loss for loss and tensor for tensor, a 1-node run of
#      the same world size (2 ranks on node1); the step times of both are printed;
#   3. the faults of a network, each while the job trains: the link taken down, every packet dropped by
#      an nftables rule inside node2, node2's rank stopped (SIGSTOP), node2's rank killed (SIGKILL; a whole node's
#      death, daemons included, is tests/multinode/slurm.sh's).
#      Each must end the job within dist.timeout_s + 10 s with a message naming the collective (or the
#      lost node) and the peer; then the fault is repaired and the same command resumes from the last
#      committed checkpoint and finishes with the 2-node straight run's losses and parameters.
# The run folder is on one file system that both nodes write (one machine: the same disk, as a shared
# file system on a cluster); every checkpoint is committed by the protocol across the two nodes.
# Prints a table row per fault for the README. Needs root, iproute2, nftables.
# usage: multinode.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$(realpath "$1") src=$(realpath "$2") work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
need_root_and_tools ip nft nsenter unshare mpirun

rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
trap remove_cluster EXIT

"$cluster" up || fail "could not make the test hosts"
"$vtb" data synth --scale 0.1 >/dev/null || fail "data synth"
printf 'node1 slots=2\nnode2 slots=2\n' >hosts
# Open MPI across the namespaces: its rsh launcher with cluster.sh as the agent, TCP on the test link only.
export OMPI_MCA_plm_rsh_agent="$cluster agent" OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=192.0.2.0/24 \
  OMPI_MCA_oob_tcp_if_include=192.0.2.0/24
# Both test hosts share this machine's cores: no binding (each would bind its rank to core 0).
on_nodes() { "$cluster" on node1 "$vtb_run" --hostfile "$work/hosts" -N 1 --threads 1 --bind none "$@"; }
on_node1() { "$cluster" on node1 "$vtb_run" -n 2 --threads 1 --bind none "$@"; }

# ---- 1. the dist check across the link ----------------------------------------------------------------
on_nodes --mpi-arg --mca --mpi-arg btl_base_verbose --mpi-arg 100 dist check --iterations 1 >check.log 2>&1 ||
  fail "dist check across the nodes"
for want in "rank 1: node2 local 0/1" "dist check: all collectives exact" \
  "\[node1:[0-9]*\] btl:tcp: now connected to 192.0.2.2" "\[node2:[0-9]*\] btl:tcp: now connected to 192.0.2.1"; do
  grep -q "$want" check.log || fail "the dist check log lacks '$want'"
done
echo "ok: dist check over TCP between node1 (192.0.2.1) and node2 (192.0.2.2): $(grep -c ' OK$' check.log) collectives exact"
grep "info allreduce" check.log | sed 's/.*info /    /'

# ---- 2. 2 nodes equal 1 node --------------------------------------------------------------------------
steps=60
train_args=(train --config "$src/configs/tiny.ini" --train.max_steps=$steps --ckpt.every_steps=10 --ckpt.keep_last=10
  --dist.timeout_s=$timeout_s --log.level=warn)
on_node1 "${train_args[@]}" --run.dir one-node >one-node.log 2>&1 || fail "the 1-node run"
on_nodes "${train_args[@]}" --run.dir two-node >two-node.log 2>&1 || fail "the 2-node run"
"$vtb" ckpt diff one-node two-node >diff.log 2>&1 || fail "1-node and 2-node parameters differ: $(tail -1 diff.log)"
same_losses one-node two-node || fail "1-node and 2-node losses differ"
echo "ok: $steps steps of tiny on 2 nodes x 1 rank equal 1 node x 2 ranks bit for bit (losses and parameters);" \
  "median step $(median_step one-node) s on one node (shared memory), $(median_step two-node) s on two (TCP)"

# ---- 3. faults --------------------------------------------------------------------------------------------
node2_rank() { for p in $(ip netns pids vtb-node2); do [[ $(cat /proc/$p/comm 2>/dev/null) == vtb ]] && echo $p; done; }
inject() {  # fault
  case $1 in
    link-down) ip -n vtb-node2 link set vtb-veth2 down ;;
    drop) ip netns exec vtb-node2 nft -f - <<'NFT'
table inet vtbfault {
  chain input { type filter hook input priority 0; policy accept; iifname "vtb-veth2" drop; }
  chain output { type filter hook output priority 0; policy accept; oifname "vtb-veth2" drop; }
}
NFT
      ;;
    stop) kill -STOP $(node2_rank) ;;
    kill) kill -KILL $(node2_rank) ;;
  esac
}
repair() {  # fault: undo it, and end what is left on node2 (a daemon that lost its mpirun, a stopped rank)
  case $1 in
    link-down) ip -n vtb-node2 link set vtb-veth2 up ;;
    drop) ip netns exec vtb-node2 nft delete table inet vtbfault ;;
  esac
  local pids; pids=$(ip netns pids vtb-node2)
  [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
  sleep 0.5
}
timeout_message="rank [01] on node[12]: collective timeout: allreduce #[0-9]+ \\([^)]*\\) did not complete within dist.timeout_s = $timeout_s s \\(waited [0-9.]+ s\\); its peers: rank [01] on node[12]"
declare -A expect=(
  [link-down]=$timeout_message [drop]=$timeout_message [stop]=$timeout_message
  # Open MPI's daemon on node2 reports the death first and mpirun ends the job itself.
  [kill]="mpirun noticed that process rank 1 with PID [0-9]+ on node node2 exited on signal 9 \\(Killed\\)"
)
rows=()
for fault in link-down drop stop kill; do
  run=fault-$fault
  on_nodes "${train_args[@]}" --run.dir $run >$run.log 2>&1 &
  job=$!
  # Once checkpoint 20 is committed and the run is past it, break something mid-run.
  wait_past_step_20 $run "kill -0 $job" || fail "$fault: the run did not reach step 20"
  at=$(date +%s.%N)
  inject $fault
  wait $job
  status=$?
  took=$(seconds_since "$at")
  ((status != 0)) || fail "$fault: the job exited 0"
  /usr/bin/python3 -c "import sys; sys.exit(float(sys.argv[1]) > float(sys.argv[2]) + 10)" "$took" $timeout_s ||
    fail "$fault: the job took $took s to end (dist.timeout_s = $timeout_s)"
  message=$(tr -s '\n ' '  ' <$run.log | grep -aoE "${expect[$fault]}" | head -1)
  [[ -n $message ]] || fail "$fault: no message matching '${expect[$fault]}'"
  committed=$(cat $run/latest)
  repair $fault
  on_nodes "${train_args[@]}" --run.dir $run >>$run.log 2>&1 || fail "$fault: the resume failed"
  same_losses two-node $run || fail "$fault: the resumed run's losses differ from the straight run"
  "$vtb" ckpt diff two-node $run >>diff.log 2>&1 || fail "$fault: the resumed run's parameters differ"
  rows+=("| $fault | exit $status after $took s | $message | from $committed, yes |")
  echo "ok: $fault ended the job (exit $status) $took s after the fault; resumed from $committed to the straight run's losses"
done
echo
echo "| fault | job end | message | resumed exactly |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
