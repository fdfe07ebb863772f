#!/usr/bin/env bash
# model.frozen_dtype (Note [Frozen weights in bf16], model/decoder_lm.h) on the tiny config, 2 ranks, bf16 steps:
#   1. the frozen projections stored in bfloat16 give the losses, gradient norms and checkpoint of float32
#      storage bit for bit over 20 steps (autocast casts a float32 weight to the same bf16 operand);
#   2. a run stored in float32 to step 10, resumed with bfloat16 storage, equals both (a checkpoint names the
#      LLM as loaded, not its storage);
#   3. bfloat16 storage with fp32 steps is refused with a sentence.
# usage: frozen_dtype.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
source "$(dirname "$0")/tiny_common.sh" "$@"
train() { tiny 2 "$@" --run.precision=bf16 --ckpt.every_steps=10; }
train f32 --train.max_steps=20 --model.frozen_dtype=float32 || fail "float32 run"
train b16 --train.max_steps=20 --model.frozen_dtype=bfloat16 || fail "bfloat16 run"
grep -q "tensors stored in bfloat16" b16.log || fail "the bfloat16 run does not say what it stored"
train mix --train.max_steps=10 --model.frozen_dtype=float32 || fail "float32 run to step 10"
train mix --train.max_steps=20 --model.frozen_dtype=auto || fail "resumed with auto (bfloat16) storage"
grep -q "model.frozen_dtype = auto (the step computes in bf16)" mix.log || fail "auto did not store bf16 under bf16 steps"
same=$(/usr/bin/python3 - <<'PY'
import json, sys
def rows(d): return [{k: v for k, v in json.loads(l).items() if k.startswith("loss") or k in ("grad_norm", "tokens")}
                     for l in open(f"{d}/metrics.jsonl")]
a, b, c = rows("f32"), rows("b16"), rows("mix")
if len(a) != 20: print(f"{len(a)} steps logged"); sys.exit(1)
for name, other in (("bfloat16", b), ("resumed", c)):
    bad = [i + 1 for i, (x, y) in enumerate(zip(a, other)) if x != y]
    if bad or len(other) != 20: print(f"{name}: steps {bad[:5]} differ from float32 storage"); sys.exit(1)
print(f"20 steps equal bit for bit; loss {a[0]['loss']:.6f} -> {a[-1]['loss']:.6f}")
PY
) || fail "$same"
for run in b16 mix; do
  diff=$("$vtb" ckpt diff f32/step_00000020 $run/step_00000020 2>&1 | tail -1)
  [[ $diff == *", 0 differ, 0 in one only" ]] || fail "$run checkpoint differs from float32 storage's: $diff"
done
tiny 1 refused --run.precision=fp32 --model.frozen_dtype=bfloat16 --train.max_steps=1 && fail "bfloat16 storage with fp32 steps ran"
grep -q "model.frozen_dtype = bfloat16 needs a step that computes in bf16" refused.log || fail "no sentence for bfloat16 with fp32"
echo "PASS: $same; checkpoints equal; bfloat16 with fp32 refused"
