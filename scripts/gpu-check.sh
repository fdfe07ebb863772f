#!/usr/bin/env bash
# The GPU check, for a machine with one NVIDIA GPU (README "Build", "GPU check"). In under 8 minutes on an
# H100/H200 it:
#   1. builds vtb against this machine's CUDA LibTorch (VTB_WITH_CUDA=ON required) into build-gpu/;
#   2. runs the unit tests with CUDA available (the CudaPath tests run instead of skipping) and the NCCL
#      collective check at -np 1 (NCCL refuses two ranks on one GPU: multi-rank NCCL needs one GPU per rank);
#   3. trains a paper-3b-sized model on the GPU for 50 steps: a random stand-in LLM of Gemma-2B's shape
#      (frozen; projections stored in bf16 by model.frozen_dtype = auto, compute in bf16 autocast),
#      Canary-1B's encoder shape and the 2-layer adapter, LoRA rank 32 fused; with CUDA's sync-debug mode set
#      to "error" from step 3 (VTB_CUDA_SYNC_DEBUG_FROM_STEP), so any synchronisation in steps 3-50 but the
#      one read per step (Note [One read per step]) fails the check; reports step time, tokens/s, audio s/s,
#      MFU against the GPU's bf16 peak, and peak GPU memory beside the model state `vtb model summary`
#      predicts for one rank;
#   4. checks a CUDA resume (configs/small.ini, dropout on, run.deterministic): 10 steps + a SIGKILL + a
#      resume equals 20 straight steps bit for bit in every loss;
#   5. runs those 20 steps again with dist.zero = 2 (NCCL reduce-scatter into gradient pieces, sharded AdamW,
#      all-gather): on one rank every loss equals the straight run's to 1e-6 relative;
# and prints one table. Needs the Debian packages of scripts/install-deps.sh (run it first where the
# machine reaches the archive and PyPI). Environment: VTB_TORCH_ENV (the torch venv), PEAK_TFLOPS (dense bf16
# peak of the GPU; default from its name), GPU_CHECK_DIR (work folder, default runs/gpu-check).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
work=${GPU_CHECK_DIR:-$src/runs/gpu-check}
rm -rf "$work" && mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
log() { echo "gpu-check: $*"; }
die() { echo "gpu-check: FAILED: $*" >&2; exit 1; }
t0=$(date +%s)
since() { echo $(( $(date +%s) - t0 )); }

command -v nvidia-smi >/dev/null || die "nvidia-smi not found: this script is for a machine with an NVIDIA GPU"
gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
log "GPU: $gpu"
if [[ -z ${PEAK_TFLOPS:-} ]]; then
  case $gpu in  # dense bf16 tensor-core peaks from NVIDIA's data sheets (SXM parts)
    *H200*|*H100*) PEAK_TFLOPS=989 ;;
    *A100*) PEAK_TFLOPS=312 ;;
    *L40S*) PEAK_TFLOPS=362 ;;
    *) PEAK_TFLOPS=0 ;;
  esac
fi

# ---- 1. build ------------------------------------------------------------------------------------------
log "[$(since) s] building (VTB_WITH_CUDA=ON)"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DVTB_WITH_CUDA=ON -DVTB_BUILD_BENCH=OFF >"$work/cmake.log" 2>&1 ||
  { tail -30 "$work/cmake.log"; die "configure (log: $work/cmake.log)"; }
grep "vtb: LibTorch" "$work/cmake.log" | sed 's/^-- /gpu-check: /'
cmake --build build-gpu -j "$(nproc)" >"$work/build.log" 2>&1 || { grep -m5 -A3 "error" "$work/build.log"; die "build"; }
vtb=$src/build-gpu/launch/vtb
"$vtb" --version

# ---- 2. unit tests with CUDA ------------------------------------------------------------------------------
log "[$(since) s] unit tests"
(cd build-gpu/tests && ./unit_tests --gtest_brief=1 >"$work/unit.log" 2>&1) || { tail -40 "$work/unit.log"; die "unit tests"; }
unit_line=$(grep -E "^\[  PASSED  \]" "$work/unit.log" | head -1)
cuda_skipped=$(grep -c "SKIPPED.*Cuda" "$work/unit.log" || true)
(cd build-gpu/tests && ./unit_tests --gtest_filter='Cuda*' >"$work/cuda_tests.log" 2>&1) || die "CUDA tests"
cuda_ran=$(grep -cE "^\[       OK \] Cuda" "$work/cuda_tests.log" || true)
grep -q "SKIPPED" "$work/cuda_tests.log" && { grep SKIPPED "$work/cuda_tests.log"; die "CUDA tests skipped on a GPU machine"; }
mpirun -np 1 --bind-to none build-gpu/tests/mpi_tests --gtest_filter='Nccl.*' >"$work/nccl.log" 2>&1 || { tail -20 "$work/nccl.log"; die "NCCL check"; }
grep -q "\[       OK \] Nccl.EveryOpEveryDtypeExact" "$work/nccl.log" || { tail -20 "$work/nccl.log"; die "the NCCL check did not run"; }

# ---- 3. paper-3b-sized training on the GPU -------------------------------------------------------------------
log "[$(since) s] speech corpus (espeak-ng)"
cd "$work"
"$vtb" data synth --scale 0.3 >synth.log 2>&1 || { tail synth.log; die "data synth"; }
sources=(--data.source="asr asr 0.40 data/synth/asr_train.jsonl" --data.source="ast ast 0.20 data/synth/ast_train.jsonl"
         --data.source="sqa sqa 0.25 data/synth/sqa_train.jsonl" --data.source="text text 0.15 data/synth/text_train.jsonl")
log "[$(since) s] paper-3b-sized model, 50 steps"
VTB_CUDA_SYNC_DEBUG_FROM_STEP=3 \
"$src/build-gpu/launch/vtb-run" -n 1 train --config "$src/configs/paper-3b.ini" --model.llm= --run.device=cuda \
  --run.dir=paper "${sources[@]}" --data.tokenizer=data/synth/tokenizer.model --train.max_steps=50 \
  --train.warmup_steps=5 --ckpt.every_steps=0 --run.peak_tflops="$PEAK_TFLOPS" --log.level=info >paper.log 2>&1 ||
  { grep -m3 -i "synchroniz" paper.log; tail -30 paper.log; die "paper-3b training"; }
# Model state one rank holds (dist.zero 0): the stand-in's float32 values are not exact in bf16, so its
# embedding stays float32 (the "float32 checkpoint" row).
predicted_gb=$("$vtb" model summary --config "$src/configs/paper-3b.ini" --model.llm= --ranks 1 |
  sed -n 's/^total, bfloat16 (a float32 checkpoint) *\([0-9.]*\) .*/\1/p')

# ---- 4. CUDA resume: 10 + resume = 20 straight -----------------------------------------------------------------
log "[$(since) s] CUDA resume check (small, dropout 0.1, deterministic)"
small() {
  local dir=$1; shift
  "$vtb" train --config "$src/configs/small.ini" --run.device=cuda --run.deterministic=true --run.dir="$dir" \
    --train.max_steps=20 --ckpt.every_steps=10 --log.level=warn "$@" >"$dir.log" 2>&1
}
small straight || { tail -20 straight.log; die "straight small run"; }
VTB_FAULT_KILL_AFTER_STEP=13 small resumed && die "the killed run exited 0"
[[ $(cat resumed/latest) == step_00000010 ]] || die "latest is $(cat resumed/latest), expected step_00000010"
small resumed || { tail -20 resumed.log; die "the resume"; }

# ---- 5. dist.zero = 2 on NCCL ------------------------------------------------------------------------------------
log "[$(since) s] dist.zero = 2 on the GPU (small, 1 rank)"
small zero2 --dist.zero=2 || { tail -20 zero2.log; die "dist.zero = 2 run"; }

# ---- the table ---------------------------------------------------------------------------------------------------
/usr/bin/python3 - "$work" "$gpu" "$unit_line" "$cuda_ran" "$cuda_skipped" "$(since)" "$predicted_gb" <<'PY'
import json, statistics, sys
work, gpu, unit_line, cuda_ran, cuda_skipped, elapsed, predicted_gb = sys.argv[1:]
lines = [json.loads(l) for l in open(f"{work}/paper/metrics.jsonl")]
steady = [l for l in lines if l["step"] > 5]  # the first steps include allocator warm-up
med = lambda k: statistics.median(l[k] for l in steady)
def losses(run): return [(l["step"], l["loss"]) for l in map(json.loads, open(f"{work}/{run}/metrics.jsonl"))]
a, b = losses("straight"), losses("resumed")
same = a == b and len(a) == 20
z = losses("zero2")
zero_rel = max(abs(x[1] - y[1]) / abs(x[1]) for x, y in zip(a, z)) if len(z) == len(a) else float("inf")
zero_ok = zero_rel <= 1e-6
rows = [
    ("GPU", gpu),
    ("unit tests", f"{unit_line.strip()} ({cuda_ran} CUDA tests ran)"),
    ("NCCL collectives, 1 rank", "every op, every dtype exact"),
    ("paper-3b step time (median, steps 6-50)", f"{med('step_s'):.3f} s"),
    ("tokens/s (answer tokens)", f"{med('tokens_per_s'):,.0f}"),
    ("LLM positions/s", f"{med('positions_per_s'):,.0f}"),
    ("audio seconds/s", f"{med('audio_s_per_s'):,.1f}"),
    ("model TFLOP/s", f"{med('model_tflops'):.1f}"),
    ("MFU (dense bf16 peak)", f"{100 * med('mfu'):.1f} %" if "mfu" in steady[0] else "n/a (PEAK_TFLOPS unknown)"),
    ("peak GPU memory", f"{max(l['gpu_peak_gib'] for l in lines):.1f} GiB, of which model state "
                        f"{float(predicted_gb) * 1e9 / 2**30:.1f} GiB predicted by vtb model summary (the rest: activations)"),
    ("CUDA syncs in steps 3-50 (sync-debug mode: error)", "none but the one read per step"),
    ("loss step 1 -> 50", f"{lines[0]['loss']:.3f} -> {lines[-1]['loss']:.3f}"),
    ("CUDA resume 10 + 10 vs 20 straight", "bit for bit" if same else f"DIFFERENT: {[(x, y) for x, y in zip(a, b) if x != y][:2]}"),
    ("dist.zero = 2 vs 0, 20 losses", "bit for bit" if a == z else f"max relative difference {zero_rel:.1e}"),
    ("wall time of this script", f"{elapsed} s"),
]
w = max(len(k) for k, _ in rows)
print("\n| check | result |\n|---|---|")
for k, v in rows: print(f"| {k} | {v} |")
sys.exit(0 if same and zero_ok else 1)
PY
