# Sourced by scripts/quickstart.sh and scripts/experiments.sh: the quickstart's stand-ins for a downloaded
# LLM and encoder, made here, and the evaluation of a model on every test split. Expects `run2` (the 2-rank
# launcher) defined by the caller; VTB_DATA names the corpus folder (default data/synth).

# make_base_llm CONFIG DIR: the config's llm.* pretrained on $VTB_DATA/lm_train.jsonl, saved as a Hugging Face folder.
make_base_llm() {
  run2 lm pretrain --config "$1" --model.llm= --out "$2" --corpus "${VTB_DATA:-data/synth}/lm_train.jsonl" \
    --steps "${VTB_LM_STEPS:-300}" --log.level=info 2>&1 |
    grep -E "lm pretrain:"
}

# make_encoder CONFIG FILE: encoder.* trained with CTC on the config's asr sources.
make_encoder() {
  run2 encoder pretrain --config "$1" --out "$2" --steps "${VTB_ENCODER_STEPS:-500}" --log.level=info 2>&1 |
    grep -E "encoder pretrain:"
}

# evaluate OUT BASE [vtb eval arguments: --ckpt D or --config F]: every test split $VTB_DATA has (asr_real:
# human speech, scored as asr; *_unseen_prompt: the asr and ast test splits asked with instructions training
# never used; asr_flite, asr_festival: the asr test sentences spoken by those engines' held-out voices;
# mixed_multiturn: two-question conversations with speech inside the second, scored on the last answer, and
# text_multiturn the same conversations all in text;
# asr_prose: real English sentences, where the corpus has them) into
# OUT/<task>, with BASE's base-llm and encoder.safetensors; $tasks picks the splits. A split already
# evaluated (OUT/<task>/metrics.json) is not evaluated again.
evaluate() {
  local out=$1 base=$2; shift 2
  for task in ${tasks:-asr asr_unseen_prompt asr_real asr_flite asr_festival asr_prose ast ast_unseen_prompt mixed_multiturn text_multiturn sqa text}; do
    [[ -f ${VTB_DATA:-data/synth}/${task}_test.jsonl && ! -f $out/$task/metrics.json ]] || continue
    run2 eval "$@" --model.llm="$base/base-llm" --model.encoder="$base/encoder.safetensors" \
      --manifest "${VTB_DATA:-data/synth}/${task}_test.jsonl" --kind "${task%%_*}" --out "$out/$task" --log.level=warn
  done
}
