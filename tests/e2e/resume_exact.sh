#!/usr/bin/env bash
# Exact resume on the tiny config with 2 ranks (issue: "Training"): a run of 20 steps straight must equal,
# bit for bit in every per-step loss and every final parameter,
#   (a) 10 steps, a SIGKILL of the whole job (after step 13), and a resume for the rest;
#   (b) a SIGKILL while checkpoint 20 is being written (checkpoint 10 stays committed), then a resume;
#   (c) a SIGTERM to one rank at step 12: every rank stops at the step boundary, checkpoint 12 is
#       committed, the job exits 75 ("requeue me"), and a resume finishes the run.
# usage: resume_exact.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$vtb" data synth --scale 0.1 >/dev/null || { echo "FAIL: data synth"; exit 1; }

train() {  # run_dir, then extra arguments
  local dir=$1; shift
  mpirun -np 2 --oversubscribe --bind-to none "$vtb" train --config "$src/configs/tiny.ini" --run.dir "$dir" \
    --train.max_steps=20 --ckpt.every_steps=10 --ckpt.keep_last=5 --log.level=warn "$@" >"$dir.log" 2>&1
}
fail() { echo "FAIL: $*"; for f in "$work"/*.log; do echo "---- $f"; tail -20 "$f"; done; exit 1; }

train straight || fail "the straight run failed"
# Checkpoints written in the background (ckpt.async) hold exactly what synchronous ones hold.
train async --ckpt.async=true || fail "the run with background checkpoints failed"
"$vtb" ckpt diff straight async >async.log || fail "background checkpoints differ: $(tail -1 async.log)"
"$vtb" ckpt diff straight/step_00000010 async/step_00000010 >>async.log || fail "background checkpoint 10 differs"

VTB_FAULT_KILL_AFTER_STEP=13 train killed; [[ $? -ne 0 ]] || fail "(a) the killed run exited 0"
[[ $(cat killed/latest) == step_00000010 ]] || fail "(a) latest is $(cat killed/latest), expected step_00000010"
train killed || fail "(a) the resume failed"

VTB_FAULT_KILL_IN_CHECKPOINT=20 train torn; [[ $? -ne 0 ]] || fail "(b) the killed run exited 0"
[[ $(cat torn/latest) == step_00000010 && -d torn/step_00000020.tmp ]] || fail "(b) expected latest step_00000010 and a torn step_00000020.tmp"
train torn || fail "(b) the resume failed"

VTB_FAULT_TERM_AT_STEP=12 train termed; status=$?
[[ $status -eq 75 ]] || fail "(c) SIGTERM: exit status $status, expected 75"
[[ $(cat termed/latest) == step_00000012 ]] || fail "(c) latest is $(cat termed/latest), expected step_00000012"
train termed || fail "(c) the resume failed"

/usr/bin/python3 - "$work" <<'PY' || fail "runs differ"
import json, sys, h5py, numpy as np
work = sys.argv[1]
def losses(run):
    return [(j["step"], j["loss"]) for j in map(json.loads, open(f"{work}/{run}/metrics.jsonl"))]
ref = losses("straight")
assert [s for s, _ in ref] == list(range(1, 21)), ref
bad = 0
with h5py.File(f"{work}/straight/step_00000020/state.h5", "r") as a:
    names = []
    a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
    for run in ["async", "killed", "torn", "termed"]:
        got = losses(run)
        if got != ref:
            print(f"{run}: per-step losses differ:", [(x, y) for x, y in zip(ref, got) if x != y][:3]); bad += 1
        with h5py.File(f"{work}/{run}/step_00000020/state.h5", "r") as b:
            diff = [n for n in names if n.startswith(("model/", "optim/")) and not np.array_equal(a[n][...], b[n][...])]
            if diff: print(f"{run}: {len(diff)} tensors differ, e.g. {diff[:3]}"); bad += 1
        print(f"{run}: 20 losses and {len(names)} tensors {'identical' if not bad else 'DIFFERENT'}")
sys.exit(1 if bad else 0)
PY
# Another world size: 3 ranks continue a 2-rank run, and say what they could not keep exact.
cp -r straight rescaled && rm -rf rescaled/step_00000020 && echo step_00000010 > rescaled/latest
mpirun -np 3 --oversubscribe --bind-to none "$vtb" train --config "$src/configs/tiny.ini" --run.dir rescaled \
  --train.max_steps=14 --ckpt.every_steps=0 --log.level=warn >rescaled.log 2>&1 || fail "3 ranks could not resume a 2-rank run"
grep -q "was written by 2 ranks, this job has 3" rescaled.log || fail "the world-size change was not reported"
[[ $(cat rescaled/latest) == step_00000014 ]] || fail "the rescaled run did not reach step 14"

"$vtb" ckpt diff straight killed >diff.log || fail "vtb ckpt diff reports differences: $(tail -1 diff.log)"

# Every checkpoint file is plain HDF5; one flipped byte fails `vtb ckpt verify`, naming the dataset.
for f in straight/step_*/*.h5; do h5dump -H "$f" >/dev/null || fail "h5dump cannot read $f"; done
"$vtb" ckpt verify straight >/dev/null || fail "verify rejects a sound checkpoint"
cp -r straight/step_00000020 flipped
/usr/bin/python3 - flipped/state.h5 <<'PY' || fail "could not corrupt the copy"
import sys, h5py, numpy as np
path = sys.argv[1]
with h5py.File(path, "r") as f:
    ds = f["/model/proj.weight"]; offset = ds.id.get_offset() if ds.chunks is None else ds.id.get_chunk_info(0).byte_offset
data = bytearray(open(path, "rb").read()); data[offset + 10] ^= 0x01; open(path, "wb").write(data)
PY
out=$("$vtb" ckpt verify flipped 2>&1); [[ $? -ne 0 && $out == *"dataset '/model/proj.weight' is corrupt"* ]] || fail "verify missed the flipped byte: $out"
echo "ok: straight = killed+resumed = torn-checkpoint+resumed = SIGTERM+requeued, bit for bit; h5dump reads all; verify names the corrupt dataset"
