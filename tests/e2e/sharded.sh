#!/usr/bin/env bash
# Sharded data (issue 36), through the real binary on real tar shards written by `vtb data shard`:
#  (a) one epoch over 1, 2 and 3 ranks × 1 and 2 loader workers reads every example exactly once (ids
#      compared with the manifest), for each layout, and for 5 shards of uneven size (1 to 24 examples) on 3 ranks;
#  (b) training from shards (asr from Lhotse Shar, ast from NeMo tarred, sqa from WebDataset, text JSONL),
#      killed mid-epoch and resumed, gives bit for bit the straight run's losses;
#  (d) a 2 → 3 rank resume mid-epoch finishes the epoch with no example lost or repeated;
#  (c) bad shards: a truncated tar and a shard listed but absent fail naming the shard (and member); with
#      data.on_error = skip the epoch finishes and counts them; a Shar cuts file out of step with its tar fails
#      naming the cut.
# usage: sharded.sh VTB_BINARY SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*"; exit 1; }
"$vtb" data synth --scale 0.1 >/dev/null || fail "data synth"
for layout in lhotse_shar nemo_tarred webdataset; do
  "$vtb" data shard --format $layout --in data/synth/asr_train.jsonl --out "asr/$layout" --shard-size 7 >/dev/null ||
    fail "data shard --format $layout"
done
# 5 uneven WebDataset shards: 60 examples as 24 + 1 + 17 + 3 + 15.
mkdir -p uneven && start=1
for n in 24 1 17 3 15; do
  sed -n "${start},$((start + n - 1))p" data/synth/asr_train.jsonl >"data/synth/part_$start.jsonl"
  "$vtb" data shard --format webdataset --in "data/synth/part_$start.jsonl" --out "part_$start" --shard-size 100 >/dev/null
  mv "part_$start/shard-000000.tar" "uneven/shard-$start.tar"
  start=$((start + n))
done

# A config of tiny.ini with the given data.source lines instead of its own.
config() {  # NAME SOURCE...
  local name=$1; shift
  grep -v '^source' "$src/configs/tiny.ini" >"$name.ini"
  for s in "$@"; do sed -i "/^\[data\]/a source = $s" "$name.ini"; done
}
expected=$(/usr/bin/python3 -c "
import json, os
print(' '.join(sorted(os.path.splitext(os.path.basename(json.loads(l)['audio_filepath']))[0] for l in open('data/synth/asr_train.jsonl'))))")
keys() {  # FOLDER...: the sorted example keys `vtb data epoch --out` wrote there
  /usr/bin/python3 - "$@" <<'PY'
import glob, json, os, re, sys
keys = []
for folder in sys.argv[1:]:
    for f in sorted(glob.glob(f"{folder}/rank_*.txt")):
        for line in open(f):
            line = line.strip()
            if m := re.search(r"key '([^']+)'|cut (\S+)$", line):
                keys.append(m.group(1) or m.group(2))
            else:  # "manifest_<k>.json:<line>" (NeMo) or "asr_train.jsonl:<line>": its audio_filepath's stem
                path, number = line.rsplit(":", 1)
                entry = json.loads(open(path).read().splitlines()[int(number) - 1])
                keys.append(os.path.splitext(os.path.basename(entry["audio_filepath"]))[0])
print(" ".join(sorted(keys)))
PY
}
read_epoch() {  # LOCATION NP OUT [ARGS]
  config epoch "x asr 1 $1"
  rm -rf "$3"
  mpirun -np "$2" --oversubscribe --bind-to none "$vtb" data epoch --config epoch.ini --out "$3" --log.level=warn "${@:4}" \
    >ep.log 2>&1 || fail "data epoch $1 on $2 ranks: $(tail -3 ep.log)"
}
same_keys() {  # WHAT FOLDER...
  local got; got=$(keys "${@:2}")
  [[ "$got" == "$expected" ]] || fail "$1: the examples read differ from the manifest's: $(diff <(tr ' ' '\n' <<<"$got") <(tr ' ' '\n' <<<"$expected") | head -5 | tr '\n' ' ')"
}
epoch() {  # LOCATION NP WORKERS: every example once?
  read_epoch "$1" "$2" ep --data.workers="$3"
  same_keys "(a) $1 on $2 ranks × $3 workers" ep
}
for layout in lhotse_shar nemo_tarred webdataset; do
  for np in 1 2 3; do for workers in 1 2; do epoch "$layout:asr/$layout" $np $workers; done; done
done
epoch "webdataset:uneven" 3 2
echo "ok (a): every example once per epoch: 3 layouts × 1-3 ranks × 1-2 workers, and 5 uneven shards on 3 ranks"

# (d) 2 ranks read 2 batches each, then 3 ranks resume from their states: the epoch is finished over the new
# ranks with every example read exactly once in all (Note [Finishing an epoch on another number of ranks]).
for data in lhotse_shar:asr/lhotse_shar webdataset:uneven data/synth/asr_train.jsonl; do
  read_epoch "$data" 2 old --max-batches 2
  read_epoch "$data" 3 new --resume-from 2:2
  [[ $(cat old/*.txt | wc -l) -gt 0 && $(cat new/*.txt | wc -l) -gt 0 ]] || fail "(d) $data: nothing read before or after"
  same_keys "(d) $data: 2 ranks × 2 batches, then 3 ranks" old new
done
echo "ok (d): a 2 → 3 rank resume finishes the epoch, nothing lost or repeated (Shar, uneven WebDataset, JSONL)"

# (b) kill mid-epoch, resume: the same losses as straight through.
"$vtb" data shard --format nemo_tarred --in data/synth/ast_train.jsonl --out ast --shard-size 6 >/dev/null || fail "shard ast"
"$vtb" data shard --format webdataset --in data/synth/sqa_train.jsonl --out sqa --shard-size 6 >/dev/null || fail "shard sqa"
config train "text text 0.15 data/synth/text_train.jsonl" "sqa sqa 0.25 webdataset:sqa" "ast ast 0.20 nemo_tarred:ast" \
  "asr asr 0.40 lhotse_shar:asr/lhotse_shar"
train() {
  local dir=$1; shift
  mpirun -np 2 --oversubscribe --bind-to none "$vtb" train --config train.ini --run.dir "$dir" --train.max_steps=16 \
    --ckpt.every_steps=6 --run.threads=1 --log.level=warn "$@" >"$dir.log" 2>&1
}
train straight || fail "(b) training from shards failed: $(tail -3 straight.log)"
VTB_FAULT_KILL_AFTER_STEP=9 train killed; [[ $? -ne 0 ]] || fail "(b) the killed run exited 0"
[[ $(cat killed/latest) == step_00000006 ]] || fail "(b) latest is $(cat killed/latest), expected step_00000006"
train killed || fail "(b) the resume failed: $(tail -3 killed.log)"
cmp <(/usr/bin/python3 -c "import json; [print(json.loads(l)['step'], json.loads(l)['loss'].hex()) for l in open('straight/metrics.jsonl')]") \
    <(/usr/bin/python3 -c "import json; [print(json.loads(l)['step'], json.loads(l)['loss'].hex()) for l in open('killed/metrics.jsonl')]") ||
  fail "(b) the resumed run's losses differ from the straight run's"
"$vtb" ckpt diff straight killed >diff.log || fail "(b) final weights differ: $(tail -1 diff.log)"
echo "ok (b): 16 steps from shards = 9 steps, SIGKILL, resume from step 6, bit for bit (losses and weights)"

# (c) bad shards.
mkdir -p broken && cp asr/webdataset/*.tar broken/
head -c 20000 asr/webdataset/shard-000001.tar >broken/shard-000001.tar
config bad "x asr 1 webdataset:broken"
out=$(mpirun -np 1 "$vtb" data epoch --config bad.ini --log.level=warn 2>&1) && fail "(c) a truncated shard was read without error"
[[ $out == *"broken/shard-000001.tar"* ]] || fail "(c) the truncated shard's error does not name it: ${out: -400}"
mkdir -p cut && cp asr/webdataset/*.tar cut/
head -c 30000 asr/webdataset/shard-000002.tar >cut/shard-000002.tar  # the index sees whole members only
config cut "x asr 1 webdataset:cut"
out=$(mpirun -np 1 "$vtb" data epoch --config cut.ini --data.on_error=skip --log.level=warn 2>&1) ||
  fail "(c) data.on_error = skip did not finish the epoch: ${out: -400}"
config absent "x asr 1 webdataset:asr/webdataset/shard-{000000..000009}.tar"
out=$(mpirun -np 1 "$vtb" data epoch --config absent.ini --log.level=warn 2>&1) && fail "(c) an absent shard was accepted"
[[ $out == *"shard-000009.tar"*"absent"* ]] || fail "(c) the absent shard is not named: ${out: -400}"
mkdir -p swapped && cp asr/lhotse_shar/* swapped/
/usr/bin/python3 - <<'PY'
import gzip
lines = gzip.open("swapped/cuts.000000.jsonl.gz", "rt").read().splitlines()
lines[0], lines[1] = lines[1], lines[0]
gzip.open("swapped/cuts.000000.jsonl.gz", "wt").write("\n".join(lines) + "\n")
PY
config swapped "x asr 1 lhotse_shar:swapped"
out=$(mpirun -np 1 "$vtb" data epoch --config swapped.ini --log.level=warn 2>&1) && fail "(c) a cuts file out of step with its tar was read"
[[ $out == *"recording.000000.tar"*"expected"* ]] || fail "(c) the mismatch does not name the shard and cut: ${out: -400}"
echo "ok (c): truncated, absent and out-of-step shards are errors naming the shard; skip finishes the epoch"
