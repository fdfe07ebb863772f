#!/usr/bin/env bash
# The quickstart's chain at test size, on 2 ranks (issues "Evaluation" and "Launch, Slurm, quickstart"):
#   1. `vtb lm pretrain` trains the tiny LLM on data/synth/lm_train.jsonl and saves a Hugging Face folder;
#      its loss falls, and an independent float64 implementation of the HF math reading that folder with
#      its own safetensors reader reproduces `vtb lm logits` (tests/model/hf_reference_check.py);
#   2. `vtb encoder pretrain` trains the encoder with CTC; its loss falls;
#   3. joint SFT loads both (model.llm through the Hugging Face loader, model.encoder);
#   4. `vtb eval` on held-out speech (unseen sentences, half by an unseen voice): the trained checkpoint's
#      WER is well below that of the untrained model it started from (a loose bound: at most 0.8 × it).
# usage: trained_beats_untrained.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
run2() { "$(dirname "$vtb")/vtb-run" -n 2 "$@"; }
fail() { echo "FAIL: $*"; for f in ./*.log; do echo "---- $f"; tail -15 "$f"; done; exit 1; }
config=$src/configs/tiny.ini

"$vtb" data synth --scale 0.5 >synth.log 2>&1 || fail "data synth"
run2 lm pretrain --config "$config" --out base --steps 500 --batch 16 --lr 3e-3 --log.level=info >lm.log 2>&1 \
  || fail "lm pretrain"
read -r first _ last <<<"$(grep -oP 'lm pretrain: loss \K[0-9.]+ → [0-9.]+' lm.log)"
/usr/bin/python3 -c "import sys; f, l = float('$first'), float('$last'); print(f'lm pretrain: loss {f} -> {l}'); sys.exit(0 if l < 0.5 * f else 1)" \
  || fail "the LLM's pretraining loss did not halve"
/usr/bin/python3 "$src/tests/model/hf_reference_check.py" "$vtb" "$work/hf" "$work/base" >hf.log 2>&1 \
  || fail "the pretrained folder does not reproduce under the independent HF implementation"
grep "pretrained" hf.log

run2 encoder pretrain --config "$config" --out encoder.safetensors --steps 800 --log.level=info >enc.log 2>&1 \
  || fail "encoder pretrain"
read -r first _ last <<<"$(grep -oP 'encoder pretrain: loss \K[0-9.]+ → [0-9.]+' enc.log)"
/usr/bin/python3 -c "import sys; f, l = float('$first'), float('$last'); print(f'encoder pretrain: CTC loss {f} -> {l}'); sys.exit(0 if l < 0.5 * f else 1)" \
  || fail "the encoder's CTC loss did not halve"

common=(--config "$config" --model.llm=base --model.encoder=encoder.safetensors)
run2 train "${common[@]}" --run.dir sft --train.max_steps=${VTB_TEST_SFT_STEPS:-800} --ckpt.every_steps=0 \
  --features.time_masks=2 --log.level=warn >sft.log 2>&1 || fail "joint SFT"
for model in untrained trained; do
  if [[ $model == trained ]]; then which=(--ckpt sft); else which=("${common[@]}"); fi
  run2 eval "${which[@]}" --manifest data/synth/asr_test.jsonl --kind asr --out eval_$model --log.level=warn \
    >eval_$model.log 2>&1 || fail "eval of the $model model"
done
/usr/bin/python3 - <<'PY' || fail "the trained model does not transcribe held-out speech clearly better"
import json, sys
u, t = (json.load(open(f"eval_{m}/metrics.json")) for m in ("untrained", "trained"))
print(f"held-out ASR ({t['examples']} utterances): WER untrained {u['wer']:.3f}, trained {t['wer']:.3f}")
sys.exit(0 if t["wer"] <= 0.8 * u["wer"] else 1)
PY
echo "ok"
