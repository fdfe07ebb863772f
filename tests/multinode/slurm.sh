#!/usr/bin/env bash
# vtb under a two-node Slurm: slurmctld + a slurmd on node1, a slurmd on node2 (slurm_cluster.sh, on the
# test hosts of cluster.sh), jobs submitted with `sbatch --nodes=2 slurm/cpu.sbatch`, ranks started by
# `srun --mpi=pmix` (Slurm's PMIx plugin wires them up across the link; MPI traffic over TCP only).
#   1. 2 nodes × 1 rank and 2 nodes × 2 ranks of `tiny` equal, loss for loss and tensor for tensor, 1-node
#      mpirun runs of the same world sizes;
#   2. a node dies mid-run: node2's slurmd, slurmstepd and rank are killed (SIGKILL). The job must end
#      with vtb's message naming the collective and the peer, and Slurm must mark node2 down; then node2's
#      slurmd is started again, the same sbatch command is submitted again, and the run resumes from its
#      last committed checkpoint and finishes with the straight 2-node run's losses and parameters.
# Needs root and Debian's slurmctld, slurmd, slurm-client, munge.
# usage: slurm.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$(realpath "$1") src=$(realpath "$2") work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/common.sh"
need_root_and_tools ip nsenter unshare mpirun slurmctld slurmd sbatch munged

rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
slurm_dir=$work/slurm
extra_logs=("$slurm_dir"/log/slurmctld.log "$slurm_dir"/log/slurmd-node1.log "$slurm_dir"/log/slurmd-node2.log)
cleanup() {
  bash "$here/slurm_cluster.sh" stop "$slurm_dir" >/dev/null 2>&1
  remove_cluster
  for ((i = 0; i < 50; ++i)); do pgrep -f "$slurm_dir/" >/dev/null || break; sleep 0.1; done
  if pgrep -fa "$slurm_dir/"; then echo "FAIL: daemons of this test left running (above)"; exit 1; fi
}
trap cleanup EXIT

"$cluster" up || fail "could not make the test hosts"
bash "$here/slurm_cluster.sh" start "$slurm_dir" >cluster.log 2>&1 || fail "could not start the two-node Slurm"
export SLURM_CONF=$slurm_dir/slurm.conf
export OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=192.0.2.0/24
on1() { "$cluster" on node1 "$@"; }
"$vtb" data synth --scale 0.1 >/dev/null || fail "data synth"

steps=60
args=(--config "$src/configs/tiny.ini" --train.max_steps=$steps --ckpt.every_steps=10 --ckpt.keep_last=10
  --dist.timeout_s=$timeout_s --log.level=info)
submit() {  # run_dir, ranks per node
  on1 sbatch --parsable --nodes=2 --ntasks-per-node="$2" --output="$work/$1.out" --open-mode=append --chdir="$work" \
    --export=ALL,VTB="$vtb" "$src/slurm/cpu.sbatch" "${args[@]}" --run.dir "$1"
}
job_state() { on1 scontrol show job "$1" 2>/dev/null | grep -oP 'JobState=\K\S+'; }
running() { [[ $(job_state "$1") =~ ^(PENDING|CONFIGURING|RUNNING|COMPLETING)$ ]]; }
wait_job() {  # job, seconds: its final state
  for ((i = 0; i < $2 * 5; ++i)); do running "$1" || break; sleep 0.2; done
  job_state "$1"
}

# ---- 1. 2 × 1 and 2 × 2 under Slurm equal 1-node runs of the same world size ----------------------------
for per_node in 1 2; do
  ranks=$((2 * per_node))
  on1 "$vtb_run" -n $ranks --threads 1 --bind none train "${args[@]}" --run.dir one-node-$ranks >one-node-$ranks.log 2>&1 ||
    fail "the 1-node run with $ranks ranks"
  job=$(submit slurm-2x$per_node $per_node) || fail "sbatch refused the 2 x $per_node job"
  state=$(wait_job "$job" 300)
  [[ $state == COMPLETED ]] || fail "the 2 x $per_node job ended $state"
  on1 scontrol show job "$job" | grep -q " NodeList=node\[1-2\]" ||
    fail "the 2 x $per_node job did not run on both nodes"
  same_losses one-node-$ranks slurm-2x$per_node || fail "2 x $per_node under Slurm: losses differ from 1 x $ranks"
  "$vtb" ckpt diff one-node-$ranks slurm-2x$per_node >>diff.log 2>&1 || fail "2 x $per_node: parameters differ"
  echo "ok: sbatch --nodes=2 --ntasks-per-node=$per_node equals 1 node x $ranks ranks bit for bit;" \
    "median step $(median_step slurm-2x$per_node) s (1 node: $(median_step one-node-$ranks) s)"
done

# ---- 2. a node dies mid-run; the resubmitted job resumes ------------------------------------------------
job=$(submit node-death 1) || fail "sbatch refused the node-death job"
wait_past_step_20 node-death "running $job" || fail "the node-death job did not reach step 20"
at=$(date +%s.%N)
kill -KILL $(ip netns pids vtb-node2)  # slurmd, slurmstepd and the rank: node2 is gone
death_state=$(wait_job "$job" 120)
took=$(seconds_since "$at")
[[ $death_state == FAILED || $death_state == NODE_FAIL ]] || fail "node death: the job ended $death_state"
want="rank 0 on node1: collective timeout: allreduce #[0-9]+ \\([^)]*\\) did not complete within dist.timeout_s = $timeout_s s \\(waited [0-9.]+ s\\); its peers: rank 1 on node2"
message=$(tr -s '\n ' '  ' <node-death.out | grep -aoE "$want" | head -1)
[[ -n $message ]] || fail "node death: no message matching '$want'"
# When vtb said so: the time stamp of the message, against the kill.
said=$(grep -aoE '^[0-9-]+ [0-9:.]+ \[rank 0\] critical' node-death.out | head -1 | cut -d' ' -f1-2)
said_after=$(/usr/bin/python3 -c "import datetime, sys; print('%.1f' % (datetime.datetime.fromisoformat(sys.argv[1]).timestamp() - float(sys.argv[2])))" "$said" "$at")
for ((i = 0; i < 150; ++i)); do [[ $(on1 sinfo -h -n node2 -o %t) == down* ]] && break; sleep 0.2; done
node2_state=$(on1 sinfo -h -n node2 -o %t)
[[ $node2_state == down* ]] || fail "node death: Slurm says node2 is '$node2_state', not down"
committed=$(cat node-death/latest)
echo "ok: node death: vtb's message $said_after s after the kill, the job ended ($death_state) after $took s; Slurm marked node2 $node2_state"

bash "$here/slurm_cluster.sh" slurmd "$slurm_dir" node2 >>cluster.log 2>&1 || fail "node2's slurmd did not come back"
job=$(submit node-death 1) || fail "sbatch refused the resubmitted job"
state=$(wait_job "$job" 300)
[[ $state == COMPLETED ]] || fail "the resubmitted job ended $state"
grep -q "resumed from .*$committed" node-death.out || fail "the resubmitted job did not resume from $committed"
same_losses slurm-2x1 node-death || fail "the resumed run's losses differ from the straight 2 x 1 run"
"$vtb" ckpt diff slurm-2x1 node-death >>diff.log 2>&1 || fail "the resumed run's parameters differ"
echo "ok: resubmitted after node2 came back, resumed from $committed, finished with the straight run's losses and parameters"
echo
echo "| node2 killed (slurmd, slurmstepd, rank; SIGKILL) | message after $said_after s, job $death_state after $took s | $message | from $committed, yes |"
