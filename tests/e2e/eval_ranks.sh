#!/usr/bin/env bash
# vtb eval gives the same predictions and metrics with 2 ranks as with 1, on a checkpoint vtb train wrote.
# usage: eval_ranks.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; tail -n 20 ./*.log; exit 1; }
"$vtb" data synth --scale 0.1 >/dev/null || fail "data synth"
mpirun -np 2 --oversubscribe --bind-to none "$vtb" train --config "$src/configs/tiny.ini" --run.dir run \
  --train.max_steps=10 --ckpt.every_steps=0 --log.level=warn >train.log 2>&1 || fail "training"
for np in 1 2; do
  for kind in asr ast; do
    mpirun -np $np --oversubscribe --bind-to none "$vtb" eval --ckpt run --manifest data/synth/${kind}_test.jsonl \
      --kind $kind --max-new-tokens 12 --batch-size 3 --out eval_${kind}_$np --log.level=warn >eval_${kind}_$np.log 2>&1 \
      || fail "eval $kind with $np rank(s)"
  done
done
for kind in asr ast; do
  cmp -s eval_${kind}_1/predictions.jsonl eval_${kind}_2/predictions.jsonl || fail "$kind: predictions differ between 1 and 2 ranks"
  /usr/bin/python3 - eval_${kind}_1/metrics.json eval_${kind}_2/metrics.json <<'PY' || fail "$kind: metrics differ"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
key = "wer" if "wer" in a else "bleu"
print(f"{a['kind']}: {key} {a[key]:.4f} with 1 rank, {b[key]:.4f} with 2 ranks, {a['examples']} examples")
sys.exit(0 if a[key] == b[key] and a["examples"] == b["examples"] else 1)
PY
done
# vtb generate: a mixed-modal prompt answers; a seeded sample repeats itself.
prompt="Transcribe the audio. <audio:data/synth/audio/asr/test/0.wav> Thanks."
"$vtb" generate --ckpt run --prompt "$prompt" --max-new-tokens 5 >gen.txt 2>gen.log || fail "generate"
a=$("$vtb" generate --ckpt run --prompt "$prompt" --temperature 1.2 --seed 5 --max-new-tokens 8 2>>gen.log) || fail "sampling"
b=$("$vtb" generate --ckpt run --prompt "$prompt" --temperature 1.2 --seed 5 --max-new-tokens 8 2>>gen.log) || fail "sampling"
[[ "$a" == "$b" ]] || fail "the same seed sampled '$a' and '$b'"
"$vtb" generate --ckpt run --prompt "<audio:/nonexistent.wav>" >/dev/null 2>missing.log && fail "a missing audio file was accepted"
grep -q "/nonexistent.wav" missing.log || fail "the missing file is not named: $(cat missing.log)"
# SQA is scored with ROUGE-L and exact match; beam search runs through vtb eval and agrees across ranks too.
for np in 1 2; do
  mpirun -np $np --oversubscribe --bind-to none "$vtb" eval --ckpt run --manifest data/synth/sqa_test.jsonl --kind sqa \
    --max-new-tokens 6 --batch-size 3 --beams 3 --out eval_sqa_$np --log.level=warn >eval_sqa_$np.log 2>&1 \
    || fail "eval sqa (beam search) with $np rank(s)"
done
cmp -s eval_sqa_1/predictions.jsonl eval_sqa_2/predictions.jsonl || fail "sqa: beam-search predictions differ between 1 and 2 ranks"
/usr/bin/python3 - eval_sqa_1/metrics.json <<'PY' || fail "sqa metrics.json lacks rouge_l/exact_match"
import json, sys
m = json.load(open(sys.argv[1]))
assert 0 <= m["rouge_l"] <= 1 and 0 <= m["exact_match"] <= m["rouge_l"] + 1e-12, m
print(f"sqa: ROUGE-L {m['rouge_l']:.4f}, exact match {m['exact_match']:.4f} (beam 3)")
PY
# vtb chat: each input line is a turn of one conversation; an unreadable audio file is reported and skipped.
printf 'Transcribe the audio. <audio:data/synth/audio/asr/test/0.wav>\n<audio:/nonexistent.wav>\nAnd again?\n/reset\nHello\n' \
  | "$vtb" chat --ckpt run --max-new-tokens 4 >chat.txt 2>chat.log || fail "chat"
[[ $(grep -c '^model> ' chat.txt) -eq 3 ]] || fail "chat: expected 3 answers for 3 turns, got: $(cat chat.txt)"
grep -q "/nonexistent.wav" chat.log || fail "chat did not report the unreadable audio file"
echo "ok: 1 rank and 2 ranks agree (greedy and beam search); generate and chat answer mixed-modal prompts"
