#!/usr/bin/env bash
# The main job end to end (README command one), on this machine's cores with 2 MPI ranks:
#   install + build → ranks checked → espeak-ng corpus + tokenizer → a small text LLM pretrained and saved
#   in Hugging Face layout (the stand-in for a downloaded Gemma) and a speech encoder pretrained with CTC
#   (the stand-in for Canary's) → single-stage joint SFT loading both (the LLM through the real Hugging Face
#   loader; frozen base + LoRA, encoder and adapter trained) → evaluation of the base and the tuned model on
#   held-out data → a table and a picture of the loss curves (runs/quickstart/).
# --ablation also trains speech-only SFT from the same base and reports its text accuracy beside the others.
# --english makes the corpus with all three synthesizers and 3,000 real English sentences (data/english/,
# configs/small-english.ini, runs/quickstart-english/).
set -euo pipefail
cd "$(dirname "$0")/.."
ablation=0 english=0
for arg in "$@"; do
  case $arg in
    --ablation) ablation=1 ;;
    --english) english=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "quickstart: unknown argument $arg (--ablation, --english)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh
export CCACHE_BASEDIR=$PWD  # ccache hits across clones
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"

start=$(date +%s)
run=runs/quickstart config=configs/small.ini synth_args=()
export VTB_DATA=data/synth
if ((english)); then
  run=runs/quickstart-english config=configs/small-english.ini VTB_DATA=data/english
  synth_args=(--engines espeak-ng,flite,festival --prose 3000 --vocab 1024 --out "$VTB_DATA")
fi
steps=${VTB_QUICKSTART_STEPS:-}  # empty: the config's train.max_steps
run2() { build/launch/vtb-run -n 2 "$@"; }
source scripts/stand_ins.sh
elapsed() { echo "($(( $(date +%s) - start )) s since the build)"; }

echo "== 1. the ranks: placement, every collective verified, bandwidth"
run2 dist check --dist.timeout_s=60

echo
echo "== 2. a synthesized speech corpus (ASR, AST, SQA, text SFT), its tokenizer, the LLM's text: $VTB_DATA/"
build/launch/vtb data synth "${synth_args[@]}"
rm -rf "$run" && mkdir -p "$run"

echo
echo "== 3. the base LLM: $config's llm.* pretrained on $VTB_DATA/lm_train.jsonl, saved as a Hugging Face folder $(elapsed)"
make_base_llm "$config" "$run/base-llm"
build/launch/vtb model summary --config "$config" --model.llm="$run/base-llm"

echo
echo "== 4. the pretrained speech encoder: encoder.* trained with CTC on the asr sources $(elapsed)"
make_encoder "$config" "$run/encoder.safetensors"

sft() {  # run folder, then extra arguments
  local dir=$1; shift
  run2 train --config "$config" --model.llm="$run/base-llm" --model.encoder="$run/encoder.safetensors" --run.dir "$dir" \
    ${steps:+--train.max_steps=$steps} "$@"
}
echo
echo "== 5. single-stage joint SFT on 2 MPI ranks: frozen base + LoRA, encoder and adapter trained $(elapsed)"
sft "$run/sft"
build/launch/vtb ckpt verify "$run/sft"

echo
echo "== 6. held-out evaluation (unseen sentences; half by a voice never trained on) $(elapsed)"
evaluate "$run/eval/base" "$run" --config "$config"
evaluate "$run/eval/sft" "$run" --ckpt "$run/sft"

if ((ablation)); then
  echo
  echo "== ablation: speech-only SFT (no text source) from the same base $(elapsed)"
  # The same config without its text source (the remaining weights are renormalised by the sampler).
  grep -vE '^source *= *[^ ]+ +text ' "$config" >"$run/speech-only.ini"
  config_used=$config config=$run/speech-only.ini
  sft "$run/speech-only"
  config=$config_used
  evaluate "$run/eval/speech-only" "$run" --ckpt "$run/speech-only"
fi

echo
echo "== 7. report $(elapsed)"
build/launch/vtb ckpt export "$run/sft" --out "$run/export" --merged >/dev/null
/usr/bin/python3 scripts/report.py "$run"  # Debian's python3, which has python3-matplotlib
echo
echo "exported (PEFT adapter, speech modules, merged LLM): $run/export"
echo "quickstart finished $(elapsed)"
