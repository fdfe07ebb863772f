#!/usr/bin/env bash
# Nothing lost, nothing mixed (issue 37), each case built from its reproduction on configs/tiny.ini, each
# bounded by a timeout far below dist.timeout_s:
#   identity a rank file of another step, a state.h5 of another run, and a ZeRO-2 rank file copied over its
#            neighbour are named file by file by verify, resume and eval (on 7dd13cf all three passed verify and
#            resumed with exit 0)
#   lock     a second training into a running job's run.dir is refused naming host and PID (1 and 2 ranks);
#            once the holder is killed the folder is free at once; `latest` may not leave its folder
#   nan      with train.lr = 1e30 the skipped steps leave BatchNorm's statistics alone: every committed
#            checkpoint is finite, `verify` says so, and eval loads the last one (on 7dd13cf the last two
#            checkpoints held NaN running statistics, verify said ok and eval refused them)
#   audio    a FIFO is refused at once by eval and skipped by training; NaN, inf and ±1e30 samples in a float
#            wav are refused by eval and `data features` and skipped and counted by training; an 18.6-hour
#            sparse wav is refused by `data features` and generate from its header, before decoding
#   bombs    `encoder import` refuses a .nemo whose YAML aliases expand to 10^9 values, a tar header declaring
#            12 GiB that the file does not hold, and a gzip .nemo inflating 1000×, each before allocating;
#            a wav cut in half is refused even for a slice that fits the surviving half
#   writes   `vtb eval --out` and `lm logits --out` on a full disk fail naming the file, leaving no file
#   safety   dist.timeout_s above a day is refused
# usage: nothing_lost.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tiny=(--config "$src/configs/tiny.ini" --run.threads=1)
failures=0 cases=0
check() {  # LABEL CONDITION-TEXT, then the condition's exit status in $?
  local ok=$? label=$1 what=$2
  cases=$((cases + 1))
  if [[ $ok -eq 0 ]]; then echo "ok   [$label] $what"; else echo "FAIL [$label] $what"; failures=$((failures + 1)); fi
}
# expect CODE PHRASE LABEL -- COMMAND...: COMMAND exits CODE (within 120 s) and prints PHRASE.
expect() {
  local code=$1 phrase=$2 label=$3
  shift 4
  timeout -k 10 120 "$@" >out.log 2>&1
  local got=$?
  [[ $got -eq $code ]] && grep -qF -- "$phrase" out.log
  check "$label" "exit $got (expected $code): $(grep -F -m1 -- "$phrase" out.log | cut -c1-160)"
  [[ $got -eq $code ]] && grep -qF -- "$phrase" out.log || tail -5 out.log | sed 's/^/    /'
}

"$vtb" data synth --scale 0.05 >/dev/null || { echo "FAIL: data synth"; exit 1; }

# ---- identity: a checkpoint's files belong together ---------------------------------------------------------
two=(timeout -k 10 300 mpirun -np 2 --oversubscribe --bind-to none "$vtb" train "${tiny[@]}" --train.max_steps=20 --ckpt.every_steps=5 --ckpt.keep_last=5 --log.level=warn)
"${two[@]}" --run.dir id >id.log 2>&1 && "${two[@]}" --run.dir id2 >id2.log 2>&1 && "${two[@]}" --run.dir z2 --dist.zero=2 >z2.log 2>&1 \
  || { echo "FAIL: the identity runs did not train"; tail id.log id2.log z2.log; exit 1; }
mixed() {  # NAME FROM: a copy of FROM's step 20 called NAME/step_00000020, its latest naming it
  rm -rf "$1" && mkdir -p "$1" && cp -r "$2/step_00000020" "$1/" && echo step_00000020 >"$1/latest"
}
mixed stale id && cp id/step_00000015/rank_1.h5 stale/step_00000020/
expect 1 "rank_1.h5: step 15, state.h5 says 20" identity -- "$vtb" ckpt verify stale
expect 1 "rank_1.h5: step 15, state.h5 says 20" identity -- mpirun -np 2 --oversubscribe --bind-to none "$vtb" train "${tiny[@]}" --run.dir stale --train.max_steps=25
mixed foreign id && cp id2/step_00000020/state.h5 foreign/step_00000020/
expect 1 "(a file of another run)" identity -- "$vtb" ckpt verify foreign
expect 1 "(a file of another run)" identity -- "$vtb" eval --ckpt foreign --manifest data/synth/asr_test.jsonl --kind asr --max-new-tokens 2 --out e_foreign
mixed twin z2 && cp twin/step_00000020/rank_0.h5 twin/step_00000020/rank_1.h5
expect 1 "rank_1.h5: rank 0, its name says 1" identity -- "$vtb" ckpt verify twin
expect 0 ": ok" identity -- "$vtb" ckpt verify z2

# ---- lock: one job per run folder --------------------------------------------------------------------------
"$vtb" train "${tiny[@]}" --run.dir busy --train.max_steps=100000 --ckpt.every_steps=5 --log.level=warn >busy.log 2>&1 &
holder=$!
for _ in $(seq 900); do [[ -s busy/latest ]] && break; sleep 0.1; done  # its first checkpoint committed
[[ -s busy/latest ]]; check lock "the holder is training ($(wc -l <busy/metrics.jsonl) steps logged, latest $(cat busy/latest))"
expect 1 "is in use by another training job (host and PID $(hostname) $holder;" lock -- "$vtb" train "${tiny[@]}" --run.dir busy
expect 1 "is in use by another training job" lock -- mpirun -np 2 --oversubscribe --bind-to none "$vtb" train "${tiny[@]}" --run.dir busy
kill -9 "$holder"; wait "$holder" 2>/dev/null
steps=$(cat busy/latest)
expect 0 "resumed from" lock -- "$vtb" train "${tiny[@]}" --run.dir busy --train.max_steps=$((10#${steps#step_} + 2)) --log.level=info
mkdir -p other && cp -r "busy/$steps" other/ && echo "../other/$steps" >busy/latest
expect 1 "which is not a checkpoint of this run folder" lock -- "$vtb" train "${tiny[@]}" --run.dir busy

# ---- nan: a skipped step changes nothing; nothing non-finite is committed ----------------------------------
timeout -k 10 120 "$vtb" train "${tiny[@]}" --run.dir lr30 --train.max_steps=12 --ckpt.every_steps=1 --ckpt.keep_last=2 --train.lr=1e30 \
  --train.warmup_steps=1 --train.max_bad_steps=4 --log.level=warn >lr30.log 2>&1
got=$?
[[ $got -eq 1 ]] && grep -qE "steps in a row with a non-finite|tensors hold NaN or infinite values" lr30.log
check nan "lr 1e30 stopped with exit $got: $(grep -m1 -E 'steps in a row|tensors hold' lr30.log | cut -c1-140)"
/usr/bin/python3 - <<'PY'
import glob, h5py, numpy as np, sys
bad = []
for path in sorted(glob.glob("lr30/step_*/*.h5")):
    with h5py.File(path, "r") as f:
        f.visit(lambda n: bad.append(f"{path}:{n}") if isinstance(f[n], h5py.Dataset) and f[n].dtype.kind == "f"
                and not np.isfinite(f[n][...]).all() else None)
print("    non-finite datasets in committed checkpoints:", len(bad), bad[:3])
sys.exit(1 if bad else 0)
PY
check nan "every committed checkpoint of the lr 1e30 run is finite"
timeout -k 10 120 "$vtb" ckpt verify lr30 >verify.log 2>&1; check nan "verify accepts the last one: $(tail -1 verify.log | cut -c1-100)"
head -2 data/synth/asr_test.jsonl >data/synth/two.jsonl
expect 0 "written to lr30_eval" nan -- "$vtb" eval --ckpt lr30 --manifest data/synth/two.jsonl --kind asr --max-new-tokens 2 --out lr30_eval --log.level=info
# verify refuses a NaN that was put into a checkpoint by hand (its fletcher32 recomputed: h5py writes it).
cp -r "lr30/$(cat lr30/latest)" poisoned
/usr/bin/python3 -c "
import h5py, numpy as np
with h5py.File('poisoned/state.h5', 'r+') as f:
    name = sorted(n for n in f['model'] if n.endswith('running_var'))[0]
    v = f['model'][name][...]; v[0] = np.nan; f['model'][name][...] = v
    print('    poisoned', name)"
expect 1 "NaN or infinite values" nan -- "$vtb" ckpt verify poisoned

# ---- audio: regular files only, finite samples only --------------------------------------------------------
mkfifo data/synth/fifo.wav
/usr/bin/python3 - <<'PY'
import json, struct
def float_wav(path, samples, rate=16000):  # WAVE_FORMAT_IEEE_FLOAT, mono, 32-bit
    data = struct.pack(f"<{len(samples)}f", *samples)
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE")
        f.write(b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
tone = [0.1] * 16000
float_wav("data/synth/nan.wav", tone[:8000] + [float("nan")] + tone[8001:])
float_wav("data/synth/inf.wav", tone[:100] + [float("inf")] + tone[101:])
float_wav("data/synth/huge.wav", tone[:100] + [1e30] + tone[101:])
lines = [json.loads(l) for l in open("data/synth/asr_train.jsonl")]
for name in ["fifo", "nan", "inf", "huge"]:
    with open(f"data/synth/{name}.jsonl", "w") as f:
        f.write(json.dumps(dict(lines[0], audio_filepath=f"{name}.wav", duration=1.0)) + "\n")
with open("data/synth/bad_audio.jsonl", "w") as f:
    for l in lines[:10]:
        f.write(json.dumps(l) + "\n")
    for name in ["fifo", "nan", "inf", "huge"]:
        f.write(json.dumps(dict(lines[0], audio_filepath=f"{name}.wav", duration=1.0)) + "\n")
PY
timeout -k 10 120 "$vtb" train "${tiny[@]}" --run.dir run --train.max_steps=2 --log.level=warn >run.log 2>&1 || { echo "FAIL: train"; tail run.log; exit 1; }
expect 1 "fifo.wav: is a FIFO, not a regular file" audio -- "$vtb" eval --ckpt run --manifest data/synth/fifo.jsonl --kind asr --max-new-tokens 2 --out e_fifo
expect 1 "is a FIFO, not a regular file" audio -- "$vtb" generate --ckpt run --prompt "<audio:data/synth/fifo.wav> hello" --max-new-tokens 2
expect 1 "nan.wav: 1 samples are NaN or infinite, the first at 0.500000 s" audio -- "$vtb" eval --ckpt run --manifest data/synth/nan.jsonl --kind asr --max-new-tokens 2 --out e_nan
expect 1 "inf.wav: 1 samples are NaN or infinite" audio -- "$vtb" data features "${tiny[@]}" --audio data/synth/inf.wav --out inf.npy
[[ ! -e inf.npy ]]; check audio "data features wrote no file for inf.wav"
expect 1 "huge.wav: 1 samples are beyond ±10000" audio -- "$vtb" data features "${tiny[@]}" --audio data/synth/huge.wav --out huge.npy
# An 18.6-hour wav that is all hole (a sparse file, 2 GiB of samples): refused from its header, before decoding.
/usr/bin/python3 - <<'PY'
import struct
frames = int(18.6 * 3600 * 16000)
with open("data/synth/long.wav", "wb") as f:
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    f.write(b"RIFF" + struct.pack("<I", 36 + 2 * frames) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt)
    f.write(b"data" + struct.pack("<I", 2 * frames))
    f.truncate(44 + 2 * frames)
PY
expect 1 "long.wav: 66960.000000 s of audio; this command uses at most 3600" audio -- "$vtb" data features "${tiny[@]}" --audio data/synth/long.wav --out long.npy
expect 1 "long.wav: 66960.000000 s of audio; this command uses at most" audio -- "$vtb" generate --ckpt run --prompt "<audio:data/synth/long.wav> hello" --max-new-tokens 2
sed -e '/^source = /d' -e 's/^\[data\]/[data]\nsource = asr asr 1 data\/synth\/bad_audio.jsonl/' "$src/configs/tiny.ini" >bad_audio.ini
timeout -k 10 120 "$vtb" train --config bad_audio.ini --run.threads=1 --run.dir skip --train.max_steps=12 --data.on_error=skip --log.level=info >skip.log 2>&1
got=$?
[[ $got -eq 0 ]] && for reason in "not a regular file" "non-finite samples" "samples out of range"; do grep -qF "skipped ($reason" skip.log || exit_reason=$reason; done
[[ $got -eq 0 && -z ${exit_reason:-} ]]
check audio "training with data.on_error=skip: exit $got, each bad file skipped and counted by reason (missing: ${exit_reason:-none})"

# ---- bombs: every reader's bound is checked before it allocates ---------------------------------------------
/usr/bin/python3 - <<'PY' || { echo "FAIL: could not make the bombs"; exit 1; }
import gzip, io, tarfile
def nemo(path, config, weights=b"PK", mode="w"):
    with tarfile.open(path, mode) as t:
        for name, data in [("model_config.yaml", config), ("model_weights.ckpt", weights)]:
            info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
# 1.6 KB of YAML that is 10^9 values once its aliases are expanded.
levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
for k in range(1, 9):
    levels.append(f"a{k}: &a{k} {{" + ", ".join(f"k{i}: *a{k - 1}" for i in range(10)) + "}")
nemo("yaml_bomb.nemo", ("\n".join(levels) + "\nencoder: *a8\n").encode())
# A header declaring 12 GiB of weights, with none of them in the file.
info = tarfile.TarInfo("model_weights.ckpt"); info.size = 12 << 30
open("forged.nemo", "wb").write(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)
# 300 MB of zeros in a 0.3 MB gzip .nemo.
with tarfile.open("inflating.nemo", "w:gz") as t:
    info = tarfile.TarInfo("model_weights.ckpt"); info.size = 300 << 20
    class Zeros(io.RawIOBase):
        left = 300 << 20
        def readable(self): return True
        def readinto(self, b):
            n = min(len(b), self.left); b[:n] = bytes(n); self.left -= n; return n
    t.addfile(info, io.BufferedReader(Zeros()))
# A wav cut in half: a slice that fits the surviving half must still be refused.
import wave
w = wave.open("whole.wav", "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
w.writeframes(b"\x10\x00" * 16000); w.close()
b = open("whole.wav", "rb").read(); open("data/synth/half.wav", "wb").write(b[:len(b) // 2])
PY
expect 1 "once its aliases are expanded" bombs -- "$vtb" encoder import --nemo yaml_bomb.nemo --out yb.safetensors
expect 1 "declares 12884901888 bytes" bombs -- "$vtb" encoder import --nemo forged.nemo --out fo.safetensors
expect 1 "a decompression bomb" bombs -- "$vtb" encoder import --nemo inflating.nemo --out in.safetensors
expect 1 "half.wav: truncated: its header declares 32000 bytes of audio" bombs -- "$vtb" data features "${tiny[@]}" --audio data/synth/half.wav --duration 0.3 --out half.npy

# ---- writes: a full disk is an error naming the file, never an empty file and exit 0 -----------------------
if unshare -m true 2>/dev/null; then
  mkdir -p full
  fill="mount -t tmpfs -o size=64k tmpfs full && { head -c 100000 /dev/zero >full/filler 2>/dev/null; true; }"
  expect 1 "full/ev/predictions.jsonl: cannot write: No space left on device" writes -- unshare -m sh -c \
    "$fill && exec $vtb eval --ckpt run --manifest data/synth/asr_test.jsonl --kind asr --max-new-tokens 8 --out full/ev"
  expect 1 "full/logits.npy: cannot write: No space left on device" writes -- unshare -m sh -c \
    "$fill && $vtb lm pretrain --config $src/configs/tiny.ini --model.llm= --out base --steps 1 --log.level=warn >/dev/null && exec $vtb lm logits --model base --ids 2,5,7 --out full/logits.npy"
else
  echo "skip [writes] a full disk: cannot make a mount namespace here (needs root)"
fi

# ---- safety: a setting that turns a safeguard off says so -------------------------------------------------
expect 2 "must be at most 86400 (a day): a longer deadline turns the watchdog off" safety -- "$vtb" config "${tiny[@]}" --dist.timeout_s=1e300

echo "$((cases - failures)) of $cases cases as documented"
[[ $failures -eq 0 ]] || { echo "FAIL: $failures case(s)"; exit 1; }
echo PASS
