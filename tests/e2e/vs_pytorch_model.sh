#!/usr/bin/env bash
# vtb's whole speech LM against an independent eager PyTorch implementation (bench/torch_speech_lm.py, the
# model bench/bench_vs_pytorch.sh times): built from configs/small.ini, started from the initial weights vtb
# writes with train.fixed_batch (Note [Fixed batch]), the same fixed batch; the parameter counts must be equal
# and the step-1 losses within 1e-5 relative, on 1 rank and on 2 (each rank's rows a batch of their own).
#   vs_pytorch_model.sh VTB SOURCE_DIR WORK_DIR PYTHON      (PYTHON: the interop venv's; exit 77 without it)
set -uo pipefail
vtb=$1 src=$2 work=$3 python=$4
if [[ ! -x $python ]]; then echo "SKIP: no interop venv at $python: run scripts/install-deps.sh"; exit 77; fi
if [[ $(id -u) -eq 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
"$vtb" data synth --scale 0.1 >/dev/null || { echo "FAIL: data synth"; exit 1; }
"$python" "$src/bench/bench_vs_pytorch.py" check "$vtb" "$src/configs/small.ini" || { echo "FAIL: see above"; exit 1; }
