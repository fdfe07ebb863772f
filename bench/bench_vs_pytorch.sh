#!/usr/bin/env bash
# vtb against the PyTorch a user would write instead (README "Against PyTorch"): bench/torch_speech_lm.py,
# the same model built from the same config in eager PyTorch and under torch.compile, with the torch of the
# wheel vtb links (the interop environment sees it). Every run trains on one fixed batch (global 8 × 2.0 s
# audio, 78 LLM positions per example; vtb through train.fixed_batch, Note [Fixed batch]). Before timing, the
# script checks that the PyTorch model has vtb's parameter count and vtb's step-1 loss on vtb's initial
# weights (dropout 0). Then ROUNDS rounds of vtb, eager, compile in turn at 1 rank × all cores and all
# cores × 1 thread, fp32 and (where the CPU has it) bf16; one table with the ratios and the machine.
#   bash bench/bench_vs_pytorch.sh [CONFIG=configs/small.ini] [STEPS=35] [ROUNDS=2]   (needs data/synth)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/small.ini} steps=${2:-35} rounds=${3:-2}
python=${VTB_INTEROP_ENV:-/opt/vtb/interop}/bin/python
[[ -x $python ]] || { echo "bench_vs_pytorch: no $python; run scripts/install-deps.sh" >&2; exit 1; }
[[ -f data/synth/tokenizer.model ]] || build/launch/vtb data synth >/dev/null
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
exec "$python" bench/bench_vs_pytorch.py run "$PWD/build/launch/vtb" "$config" "$steps" "$rounds"
