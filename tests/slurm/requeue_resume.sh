#!/usr/bin/env bash
# A real Slurm (munge + slurmctld + slurmd from Debian, started in a private folder) runs
# slurm/cpu.sbatch with 2 tasks on the tiny config. Mid-run the batch shell gets the checkpoint signal
# (as `--signal=B:USR1@N` sends it before the time limit); slurm/vtb-step forwards it to the ranks, they
# commit a checkpoint and exit 75, the job requeues itself, reruns, resumes from `latest` and finishes.
# Its per-step losses must equal, bit for bit, those of the same training run straight through by mpirun.
# usage: requeue_resume.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
steps=60
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if (($(id -u) != 0)); then echo "SKIP: the local Slurm daemons need root"; exit 77; fi
for p in slurmctld slurmd sbatch munged; do
  command -v $p >/dev/null || [[ -x /usr/sbin/$p ]] || { echo "FAIL: $p is not installed (bash scripts/install-deps.sh)"; exit 1; }
done

cluster=$work/cluster
cleanup() { bash "$src/tests/slurm/local_slurm.sh" stop "$cluster" >/dev/null 2>&1; }
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log "$work"/job.out "$cluster"/log/slurmctld.log; do [[ -f $f ]] && { echo "---- $f"; tail -25 "$f"; }; done
  exit 1
}

"$vtb" data synth --scale 0.1 >/dev/null || fail "data synth"
train_args=(--config "$src/configs/tiny.ini" --train.max_steps=$steps --ckpt.every_steps=0 --log.level=info)
mpirun -np 2 --oversubscribe --bind-to none "$vtb" train "${train_args[@]}" --run.dir straight --run.threads=1 \
  >straight.log 2>&1 || fail "the straight mpirun run failed"

bash "$src/tests/slurm/local_slurm.sh" start "$cluster" >cluster.log 2>&1 || fail "could not start the local Slurm"
export SLURM_CONF=$cluster/slurm.conf

# The same binary directory holds vtb-step; the template finds both through VTB.
job=$(VTB=$vtb sbatch --parsable -O --ntasks=2 --output="$work/job.out" --chdir="$work" \
  "$src/slurm/cpu.sbatch" "${train_args[@]}" --run.dir slurm) || fail "sbatch refused the job"
echo "submitted job $job"

wait_until() {  # seconds, description, condition command...
  local limit=$1 what=$2; shift 2
  for ((i = 0; i < limit * 5; ++i)); do "$@" && return 0; sleep 0.2; done
  fail "timed out after ${limit}s waiting for: $what"
}
job_state() { scontrol show job "$job" 2>/dev/null | grep -oP 'JobState=\K\S+'; }
steps_logged() { [[ -f slurm/metrics.jsonl ]] && (($(wc -l <slurm/metrics.jsonl) >= $1)); }

wait_until 120 "10 steps under Slurm" steps_logged 10
scancel --signal=USR1 --batch "$job" || fail "scancel --signal=USR1 --batch failed"
echo "sent USR1 to the batch shell after $(wc -l <slurm/metrics.jsonl) steps"

wait_until 120 "the job to requeue itself" bash -c "grep -q 'scontrol requeue' job.out"
# Released only once the first run has fully ended (PENDING, waiting for its begin time): releasing it while
# it is still REQUEUED makes slurmctld start it on a revoked credential.
wait_until 60 "the requeued job to be pending" bash -c "[[ \$(scontrol show job $job | grep -oP 'JobState=\K\S+') == PENDING ]]"
# ...and once slurmd has torn down the first run's step: the rerun's step has the same id (JOB.0), and one
# launched while the old slurmstepd still exits is aborted by Slurm. (Without the release below, Slurm's own
# requeue delay of ~2 minutes keeps the two apart.)
wait_until 60 "the first run's job step to end" bash -c "! pgrep -f 'slurmstepd: \\[$job\\.' >/dev/null"
# ...and once the clock has left the second in which the first run was killed: slurmd rejects a credential
# created no later than its job's revocation (Slurm's cred_revoked(): cred->ctime <= j->revoked, in whole
# seconds), so a release within that second fails the rerun with "Job credential revoked".
revoked_at=$(date +%s)
wait_until 5 "the second after the kill to pass" bash -c "(( \$(date +%s) > $revoked_at + 1 ))"
stopped_at=$(cat slurm/latest) || fail "no committed checkpoint after the signal"
[[ $stopped_at != step_000000$steps ]] || fail "the run reached the end before the signal: make it longer"
echo "checkpoint $stopped_at committed, job requeued"
scontrol update JobId="$job" StartTime=now || fail "could not release the requeued job"

ended() { [[ $(job_state) =~ ^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL)$ ]]; }
wait_until 240 "the requeued job to end" ended
[[ $(job_state) == COMPLETED ]] || fail "the requeued job ended $(job_state)"
grep -q "restart 1 " job.out || fail "the job did not run a second time (SLURM_RESTART_COUNT=1)"
grep -q "resumed from .*$stopped_at" job.out || fail "the rerun did not resume from $stopped_at"
[[ $(cat slurm/latest) == step_000000$steps ]] || fail "the resumed run did not reach step $steps"

/usr/bin/python3 - "$work" "$steps" <<'PY' || fail "the Slurm run's losses differ from the straight run's"
import json, sys
work, steps = sys.argv[1], int(sys.argv[2])
def losses(run):
    return [(j["step"], j["loss"]) for j in map(json.loads, open(f"{work}/{run}/metrics.jsonl"))]
ref, got = losses("straight"), losses("slurm")
assert [s for s, _ in ref] == list(range(1, steps + 1)), ref[:3]
if got != ref:
    print("first differences:", [(a, b) for a, b in zip(ref, got) if a != b][:3], len(ref), len(got))
    sys.exit(1)
print(f"{steps} per-step losses identical: straight mpirun run == Slurm run signalled, requeued and resumed")
PY
"$vtb" ckpt diff straight slurm >diff.log || fail "final checkpoints differ: $(tail -1 diff.log)"
echo "PASS"
