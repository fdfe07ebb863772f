#!/usr/bin/env bash
# Sharded optimizer (dist.zero = 1, Note [Optimizer shards]) and sharded gradients (dist.zero = 2, Note
# [Scattered buckets]) on the tiny config, gradient buckets made small (dist.first_bucket_mib = 0.05,
# dist.bucket_mib = 0.2: 6 buckets, parameters split between ranks), clipping at 0.05 so that every step clips:
#   1. on 2 and on 3 ranks, 50 steps with dist.zero = 1 equal 50 steps with dist.zero = 0 bit for bit: every
#      per-step loss, every parameter, and the AdamW moments (assembled from the ranks' shards);
#   2. dist.zero = 2 equals 0 bit for bit on 2 ranks (a + b has one rounding, whatever the collective). On 3
#      ranks Open MPI sums a reduce-scatter in another order than these buckets' allreduces, so it is equal to
#      rounding: losses within 1e-6 relative, parameters within 1e-3 and moments within 1e-2 of each tensor's
#      largest element (measured: 6.2e-8, 2.1e-4 and 3.0e-3; dist.zero = 0 with one 25 MiB bucket instead
#      differs from these small buckets by exactly as much, since the allreduce's order then changes too). Tensors whose
#      gradient is zero in exact arithmetic (attention key biases, conv biases before a BatchNorm) hold only
#      rounding noise (~1e-14), so a tensor's largest element is floored at 1e-6 of the largest of its kind;
#      With gradient accumulation (train.micro_batches = 3) on 2 ranks, dist.zero = 2 equals 0 bit for bit too;
#   3. killed after step 33 and resumed (same world size) dist.zero = 2 equals its straight run bit for bit;
#   4. 2 → 3 → 2 ranks and dist.zero 2 → 1 → 2: saved by 2, resumed by 3, killed, resumed by 2 again, the run
#      finishes, and each resume says it re-sharded the optimizer (element for element:
#      tests/unit/test_optimizer_shards.cpp).
# usage: zero.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
source "$(dirname "$0")/tiny_common.sh" "$@"
train() {  # ranks, run_dir, then extra arguments
  local np=$1 dir=$2; shift 2
  tiny "$np" "$dir" --train.max_steps=50 --ckpt.every_steps=10 --ckpt.keep_last=10 --dist.first_bucket_mib=0.05 \
    --dist.bucket_mib=0.2 --train.clip=0.05 "$@"
}
# Losses, parameters and assembled AdamW moments of two runs' last checkpoints: equal bit for bit, or with a
# third argument "close" within the tolerances of point 2 above.
same_runs() {
  /usr/bin/python3 - "$work/$1" "$work/$2" "${3:-exact}" <<'PY'
import glob, json, sys, h5py, numpy as np
def run(d):
    losses = [(j["step"], j["loss"]) for j in map(json.loads, open(f"{d}/metrics.jsonl"))]
    ck = f"{d}/step_00000050"
    with h5py.File(f"{ck}/state.h5") as s:
        model = {n: s[f"model/{n}"][...] for n in s["model"]}
        sharded = int(s["train"].attrs["zero"]) >= 1
        shapes = {n: s[f"model/{n}"].shape for n in s["model"]}
        moments = {}
        if not sharded:
            s["optim"].visititems(lambda n, o: moments.__setitem__(n, o[...].reshape(-1)) if isinstance(o, h5py.Dataset) else None)
    if sharded:  # put every rank's pieces back together
        for f in sorted(glob.glob(f"{ck}/rank_*.h5")):
            with h5py.File(f) as r:
                for name in r["optim"]:
                    g = r[f"optim/{name}"]
                    off, n = int(g["offset"][0]), g["exp_avg"].shape[0]
                    for k in ("exp_avg", "exp_avg_sq"):
                        full = moments.setdefault(f"{name}/{k}", np.full(int(np.prod(shapes[name])), np.nan, np.float32))
                        full[off:off + n] = g[k][...]
                    moments[f"{name}/step"] = g["step"][...]
    return losses, model, moments
(la, ma, oa), (lb, mb, ob) = run(sys.argv[1]), run(sys.argv[2])
bad = []
if set(ma) != set(mb) or set(oa) != set(ob): bad.append("parameter or moment sets differ")
if [s for s, _ in la] != [s for s, _ in lb]: bad.append("logged steps differ")
if sys.argv[3] == "exact":
    if la != lb: bad.append(f"losses differ at {[x for x, y in zip(la, lb) if x != y][:2]}")
    bad += [f"parameter {n}" for n in ma if not np.array_equal(ma[n], mb.get(n))]
    bad += [f"moment {n}" for n in oa if not np.array_equal(oa[n], ob.get(n))]
    if bad: print("; ".join(bad[:5])); sys.exit(1)
    print(f"{len(la)} losses, {len(ma)} parameters, {len(oa)} moments identical"); sys.exit(0)
if bad: print("; ".join(bad)); sys.exit(1)
loss = max(abs(x - y) / abs(x) for (_, x), (_, y) in zip(la, lb))
def worst(a, b):  # largest difference relative to each tensor's largest element (floored: see point 2)
    kind = lambda n: n.rsplit("/", 1)[-1]
    top = {}
    for n in a: top[kind(n)] = max(top.get(kind(n), 0.0), float(np.abs(a[n]).max()))
    return max(float(np.abs(a[n].astype(np.float64) - b[n]).max()) /
               max(float(np.abs(a[n]).max()), 1e-6 * top[kind(n)], 1e-30) for n in a)
params, moments = worst(ma, mb), worst(oa, ob)
same = sum(np.array_equal(ma[n], mb[n]) for n in ma)
text = f"losses within {loss:.1e}, parameters {params:.1e}, moments {moments:.1e} ({same} of {len(ma)} parameters identical)"
print(text)
sys.exit(0 if loss <= 1e-6 and params <= 1e-3 and moments <= 1e-2 else 1)
PY
}

for np in 2 3; do
  train $np z0-$np --dist.zero=0 || fail "$np ranks, dist.zero = 0"
  for zero in 1 2; do
    train $np z$zero-$np --dist.zero=$zero || fail "$np ranks, dist.zero = $zero"
    grep -q "dist.zero = $zero: AdamW state.* sharded over $np ranks" z$zero-$np.log || fail "no sharding line in z$zero-$np.log"
  done
  out=$(same_runs z0-$np z1-$np) || fail "$np ranks: dist.zero = 1 differs from 0: $out"
  echo "ok: $np ranks, dist.zero = 1 equals 0: $out"
  [[ $np == 2 ]] && mode=exact || mode=close
  out=$(same_runs z0-$np z2-$np $mode) || fail "$np ranks: dist.zero = 2 differs from 0: $out"
  echo "ok: $np ranks, dist.zero = 2 equals 0 ($mode): $out"
done

for zero in 0 2; do train 2 acc$zero --dist.zero=$zero --train.micro_batches=3 || fail "micro_batches = 3, dist.zero = $zero"; done
out=$(same_runs acc0 acc2) || fail "with gradient accumulation dist.zero = 2 differs from 0: $out"
echo "ok: 2 ranks, 3 micro-batches a step, dist.zero = 2 equals 0: $out"

VTB_FAULT_KILL_AFTER_STEP=33 train 2 killed --dist.zero=2; [[ $? -ne 0 ]] || fail "the killed run exited 0"
[[ $(cat killed/latest) == step_00000030 ]] || fail "latest is $(cat killed/latest), expected step_00000030"
train 2 killed --dist.zero=2 || fail "the resume failed"
out=$(same_runs z2-2 killed) || fail "killed and resumed differs from the straight sharded run: $out"
echo "ok: dist.zero = 2 killed after step 33 and resumed equals the straight run: $out"

VTB_FAULT_KILL_AFTER_STEP=23 train 2 reshard --dist.zero=2; [[ $? -ne 0 ]] || fail "2 ranks: the killed run exited 0"
VTB_FAULT_KILL_AFTER_STEP=33 train 3 reshard --dist.zero=1; [[ $? -ne 0 ]] || fail "3 ranks: the killed run exited 0"
train 2 reshard --dist.zero=2 || fail "2 → 3 → 2: the last resume failed"
grep -q "re-sharded from dist.zero = 2 over 2 rank(s) to dist.zero = 1 over 3" reshard.log || fail "no 2 → 3 re-shard line"
grep -q "re-sharded from dist.zero = 1 over 3 rank(s) to dist.zero = 2 over 2" reshard.log || fail "no 3 → 2 re-shard line"
[[ $(cat reshard/latest) == step_00000050 ]] || fail "2 → 3 → 2 did not reach step 50"
"$vtb" ckpt verify reshard >/dev/null || fail "ckpt verify of the re-sharded run"
echo "ok: 2 → 3 → 2 ranks with dist.zero 2 → 1 → 2: re-sharded at each resume, finished at step 50, checkpoint verified"
