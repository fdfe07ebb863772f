#!/usr/bin/env bash
# What vtb refuses, tried as a careless user would: each case runs the real binary on real files and must
# end with the documented exit code and a message naming the problem (README "What vtb refuses").
#   ranks   ranks launched with different settings                          exit 4
#   resume  a resume or a --ckpt load that changes a model-defining key       exit 2
#   meta    a flipped byte in a checkpoint's metadata (attribute or its copy) verify fails
#   number  numbers out of range, NaN, a weight of inf, a folder as --config exit 2
#   audio   data.on_error=skip: bad audio counted once, dropped, reported     exit 0
#   weights NaN in loaded weights; a config.json field of the wrong type; a vocab_size that is not the
#           embedding's row count                                              exit 1
#   prompts a prompt past --max-length; a stray <audio> and a long line in a chat exit 1 / 0
#   files   export into a used folder; an unwritable run.dir; a full disk     exit 2 / 1 / 1
# usage: bad_inputs.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(timeout 120 mpirun --oversubscribe --bind-to none)
tiny=(--config "$src/configs/tiny.ini")
failures=0 cases=0

# expect CODE PHRASE LABEL -- COMMAND...: COMMAND exits CODE and prints PHRASE (fixed string).
expect() {
  local code=$1 phrase=$2 label=$3
  shift 4
  "$@" >out.log 2>&1
  local got=$?
  cases=$((cases + 1))
  if [[ $got -ne $code ]] || ! grep -qF -- "$phrase" out.log; then
    echo "FAIL [$label] exit $got (expected $code), message with '$phrase' expected; the output ends:"
    tail -8 out.log | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "ok   [$label] exit $got: $(grep -F -m1 -- "$phrase" out.log | cut -c1-150)"
  fi
}

"$vtb" data synth --scale 0.05 >/dev/null || { echo "FAIL: data synth"; exit 1; }

# ---- ranks: every rank must run with the same settings ----------------------------------------------------
expect 4 "train.lr: '0.001' on rank 0; '0.002' on rank 1" ranks -- \
  "${mpi[@]}" -np 1 "$vtb" train "${tiny[@]}" --run.dir r --train.lr=0.001 : -np 1 "$vtb" train "${tiny[@]}" --run.dir r --train.lr=0.002
expect 4 "run.dir: 'a' on rank 0; 'b' on rank 1" ranks -- \
  "${mpi[@]}" -np 1 "$vtb" train "${tiny[@]}" --run.dir a : -np 1 "$vtb" train "${tiny[@]}" --run.dir b

# ---- resume: the model a checkpoint holds is the model it loads into ---------------------------------------
"$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=2 --log.level=warn >train.log 2>&1 || { echo "FAIL: train"; tail train.log; exit 1; }
expect 2 "lora.alpha: 8 → 4" resume -- "$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=4 --lora.alpha=4
expect 2 "encoder.ff_dim: 128 → 64" resume -- "$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=4 --encoder.ff_dim=64
expect 2 "lora.targets: q,k,v,o,gate,up,down → q,v" resume -- "$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=4 --lora.targets=q,v
expect 2 "lora.rank: 8 → 4" resume -- "$vtb" eval --ckpt run --manifest data/synth/asr_test.jsonl --kind asr --lora.rank=4
# A run-defining change is allowed and said once.
expect 0 "train.lr: 0.001 → 0.0005" resume -- "$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=2 --train.lr=0.0005

# ---- meta: checkpoint metadata is checksummed -------------------------------------------------------------
step=$(cat run/latest)
# The stored config holds "max_steps = 2" twice (the attribute and its checksummed copy): flip each in turn.
for which in 1 2; do
  rm -rf flipped && cp -r "run/$step" flipped
  /usr/bin/python3 - "$which" <<'PY' || { echo "FAIL: could not flip the byte"; exit 1; }
import sys
path, which = "flipped/state.h5", int(sys.argv[1])
data = bytearray(open(path, "rb").read())
at = -1
for _ in range(which):
    at = data.find(b"max_steps = 2", at + 1)
assert at >= 0, "the config text is not in the file"
data[at + len("max_steps = ")] = ord("9")
open(path, "wb").write(data)
PY
  # Which occurrence is the attribute depends on HDF5's layout: either message names the damage.
  "$vtb" ckpt verify flipped >out.log 2>&1
  got=$?
  cases=$((cases + 1))
  if [[ $got -ne 0 ]] && grep -qE "differs from its checksummed copy|is corrupt \(fletcher32" out.log; then
    echo "ok   [meta] flipped byte #$which: exit $got: $(grep -m1 -E 'differs|corrupt' out.log | cut -c1-150)"
  else
    echo "FAIL [meta] flipped byte #$which in the stored config passed verify (exit $got)"; tail -5 out.log
    failures=$((failures + 1))
  fi
done

# ---- number: every number key is range-checked at parse time ----------------------------------------------
expect 2 "train.max_steps = 0: must be a finite number ≥ 1" number -- "$vtb" config "${tiny[@]}" --train.max_steps=0
expect 2 "lora.rank = -1: must be a finite number ≥ 0" number -- "$vtb" config "${tiny[@]}" --lora.rank=-1
expect 2 "dist.timeout_s = -1: must be a finite number > 0" number -- "$vtb" config "${tiny[@]}" --dist.timeout_s=-1
expect 2 "train.lr = nan: must be a finite number > 0" number -- "$vtb" config "${tiny[@]}" --train.lr=nan
expect 2 "train.beta2 = 1: must be in [0, 1)" number -- "$vtb" config "${tiny[@]}" --train.beta2=1
printf '[train]\nmax_steps = -3\n' >neg.ini
expect 2 "neg.ini:2: train.max_steps = -3" number -- "$vtb" config --config neg.ini
sed 's/^source = asr asr 0.40/source = asr asr inf/' "$src/configs/tiny.ini" >inf.ini
expect 2 "weight 'inf' must be a number in [0, 1e6]" number -- "$vtb" train --config inf.ini --run.dir inf
expect 2 "is a directory, not an INI file" number -- "$vtb" config --config "$src/configs"
expect 2 "--top-p must be in (0, 1]" number -- "$vtb" generate --ckpt run --prompt hi --temperature 1 --top-p 2
expect 2 "--temperature must be ≥ 0" number -- "$vtb" generate --ckpt run --prompt hi --temperature -1
expect 2 "--max-new-tokens must be at least 1" number -- "$vtb" eval --ckpt run --manifest data/synth/asr_test.jsonl --kind asr --max-new-tokens -5

# ---- audio: with data.on_error=skip a bad example is counted once, dropped, and reported -------------------
head -c 3000 /dev/urandom >data/synth/noise.wav
: >data/synth/empty.wav
/usr/bin/python3 - <<'PY'
import json
lines = [json.loads(l) for l in open("data/synth/asr_train.jsonl")]
lines[0]["audio_filepath"] = "noise.wav"  # not audio
lines[1]["audio_filepath"] = "empty.wav"  # no bytes
lines[2]["duration"] += 5                 # longer than the file
with open("data/synth/bad_asr.jsonl", "w") as f:
    for l in lines[:12]:
        f.write(json.dumps(l) + "\n")
PY
sed -e '/^source = /d' -e 's/^\[data\]/[data]\nsource = asr asr 1 data\/synth\/bad_asr.jsonl/' "$src/configs/tiny.ini" >bad.ini
expect 1 "bad_asr.jsonl:" audio -- "$vtb" train --config bad.ini --run.dir bad_fail --train.max_steps=6
"$vtb" train --config bad.ini --run.dir bad_skip --train.max_steps=12 --data.on_error=skip --log.level=info >skip.log 2>&1
got=$?
cases=$((cases + 1))
if /usr/bin/python3 - "$got" <<'PY'; then
import json, re, sys
log = open("skip.log").read()
first = re.findall(r"skipped \((\w[\w ]*), bad example #\d+", log)
rows = [json.loads(l) for l in open("bad_skip/metrics.jsonl")]
dropped = sum(r["skipped_examples"] for r in rows)
print(f"ok   [audio] exit {sys.argv[1]}: 3 bad files logged once each ({', '.join(sorted(first))}), "
      f"{dropped:g} draws of them dropped over {len(rows)} steps (metrics.jsonl skipped_examples)")
sys.exit(0 if sys.argv[1] == "0" and len(first) == 3 and len(set(first)) == 2 and dropped >= 3 else 1)
PY
  :
else
  echo "FAIL [audio] the skip policy did not count each bad file once"; grep -i skipped skip.log | head; failures=$((failures + 1))
fi
expect 0 "left out of the score" audio -- "$vtb" eval --ckpt run --manifest data/synth/bad_asr.jsonl --kind asr --data.on_error=skip --max-new-tokens 4 --out eval_skip
/usr/bin/python3 -c "import json,sys; m=json.load(open('eval_skip/metrics.json')); print('     eval: examples', m['examples'], 'skipped', len(m['skipped'])); sys.exit(0 if m['examples'] == 9 and len(m['skipped']) == 3 else 1)" \
  || { echo "FAIL [audio] eval did not leave exactly the 3 bad examples out"; failures=$((failures + 1)); }

# ---- weights: non-finite values and mistyped config.json fields are named ---------------------------------
"$vtb" lm pretrain "${tiny[@]}" --model.llm= --out base --steps 1 --log.level=warn >lm.log 2>&1 || { echo "FAIL: lm pretrain"; tail lm.log; exit 1; }
"$vtb" encoder pretrain "${tiny[@]}" --out enc.safetensors --steps 1 --log.level=warn >enc.log 2>&1 || { echo "FAIL: encoder pretrain"; tail enc.log; exit 1; }
/usr/bin/python3 - <<'PY'
import json, struct
# A NaN in one encoder tensor: rewrite its first float32 in place (header: u64 length, JSON, data).
data = bytearray(open("enc.safetensors", "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name = sorted(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")[0]
start = 8 + n + header[name]["data_offsets"][0]
data[start:start + 4] = struct.pack("<f", float("nan"))
open("nan.safetensors", "wb").write(data)
open("nan_name", "w").write(name)
c = json.load(open("base/config.json"))
c["hidden_size"] = str(c["hidden_size"])
import os, shutil
shutil.copytree("base", "typo_base")
json.dump(c, open("typo_base/config.json", "w"))
c = json.load(open("base/config.json"))
c["vocab_size"] += 1  # the embedding keeps its rows
shutil.copytree("base", "vocab_base")
json.dump(c, open("vocab_base/config.json", "w"))
PY
expect 1 "NaN or infinite values (1):" weights -- "$vtb" train "${tiny[@]}" --run.dir nan --model.encoder=nan.safetensors --train.max_steps=1
grep -qF "$(cat nan_name) (1 of" out.log || { echo "FAIL [weights] the NaN tensor is not named"; failures=$((failures + 1)); }
expect 1 "encoder.ff_dim = 64 here, the file has 128" weights -- "$vtb" train "${tiny[@]}" --run.dir ff --model.encoder=enc.safetensors --encoder.ff_dim=64 --train.max_steps=1
expect 1 "typo_base/config.json: \"hidden_size\" is \"" weights -- "$vtb" model summary "${tiny[@]}" --model.llm=typo_base
expect 1 "config.json says vocab_size" weights -- "$vtb" lm logits --model vocab_base --ids 2,5,7 --out vocab.npy
expect 2 "llm.layers is set, but model.llm = base has another value" weights -- "$vtb" model summary "${tiny[@]}" --model.llm=base --llm.layers=3

# ---- prompts: bounded before the LLM runs; a chat survives what it cannot use ------------------------------
long=$(/usr/bin/python3 -c "print(' '.join(['the'] * 10000))")
expect 1 "exceeds the limit of 8192 (--max-length" prompts -- "$vtb" generate --ckpt run --prompt "$long" --max-new-tokens 4
expect 1 "exceeds the limit of 64 (--max-length" prompts -- "$vtb" generate --ckpt run --prompt "hello there" --max-length 64 --max-new-tokens 60
printf 'hello\nsay <audio> now\n%s\ngoodbye\n' "$long" >chat.txt
expect 0 "placeholder token itself" prompts -- "$vtb" chat --ckpt run --max-new-tokens 4 <chat.txt
grep -qF "/reset starts a new conversation" out.log && [[ $(grep -c "^model> " out.log) -eq 2 ]] \
  || { echo "FAIL [prompts] chat did not answer 2 of 4 lines and say why it left 2 out"; failures=$((failures + 1)); }

# ---- files: nothing overwritten without asking; an unwritable run folder found at once --------------------
mkdir -p used/merged && echo stale >used/merged/old.txt
expect 2 "--out used is not empty" files -- "$vtb" ckpt export run --out used
expect 0 "exported" files -- "$vtb" ckpt export run --out used --force
[[ ! -e used/merged/old.txt && -f used/adapter/adapter_model.safetensors ]] \
  || { echo "FAIL [files] --force left the stale merged/ or wrote no adapter"; failures=$((failures + 1)); }
expect 1 "run.dir /proc/vtb_run is not writable from rank 0" files -- "$vtb" train "${tiny[@]}" --run.dir /proc/vtb_run

# A full disk during a checkpoint (a 2 MiB tmpfs in a private mount namespace; a checkpoint of tiny is ~4.5 MB),
# written in the background and in the foreground: one line naming the file and the cause, exit 1, no crash.
if unshare -m true 2>/dev/null; then
  for async in true false; do
    mkdir -p "full_$async"
    expect 1 "its file system is full" files -- unshare -m sh -c "mount -t tmpfs -o size=2m tmpfs full_$async && exec $vtb train --config $src/configs/tiny.ini --run.dir full_$async/run --train.max_steps=2 --ckpt.every_steps=1 --ckpt.async=$async --log.level=warn"
    [[ $(wc -l <out.log) -le 2 ]] || { echo "FAIL [files] a full disk printed $(wc -l <out.log) lines"; failures=$((failures + 1)); }
  done
else
  echo "skip [files] full disk: cannot make a mount namespace here (needs root)"
fi

echo "$((cases - failures)) of $cases cases refused as documented"
[[ $failures -eq 0 ]] || { echo "FAIL: $failures case(s)"; exit 1; }
echo PASS
