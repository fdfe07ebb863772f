#!/usr/bin/env bash
# The data path from tar shards against the same data as JSONL + loose wav files (issue 36), through
# `vtb data epoch` (one epoch, as training reads it: audio decoded, log-mel features, SpecAugment), 1 and 2
# ranks with one loader worker each; then the time to the first batch of a run resumed in the middle of a
# 1,000-example shard, against a fresh start. Prints a markdown table.
# usage: bench_shards.sh VTB_BINARY SOURCE_DIR [WORK_DIR]
set -euo pipefail
vtb=$1 src=$2 work=${3:-/tmp/vtb-bench-shards}
mkdir -p "$work" && cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
[[ -f data/synth/asr_train.jsonl ]] || "$vtb" data synth --scale 1.2 >/dev/null
# The speech splits together (ASR, AST, SQA): more than one 1,000-example shard.
cat data/synth/{asr,ast,sqa}_train.jsonl >data/synth/speech.jsonl
for layout in lhotse_shar nemo_tarred webdataset; do
  [[ -d $layout ]] || "$vtb" data shard --format $layout --in data/synth/speech.jsonl --out $layout --shard-size 1000 >/dev/null
done
n=$(grep -c . data/synth/speech.jsonl)
echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $n examples (espeak-ng ASR, AST and SQA, 16 kHz wav), shards of 1000 (+ the remainder), configs/tiny.ini's features, data.workers = 1, run.threads = 1"
echo
echo "| data | ranks | examples/s | audio s/s | examples/s per rank |"
echo "|---|---|---|---|---|"
run() {  # LOCATION NP [ARGS]: the ranks' summary lines
  grep -v '^source' "$src/configs/tiny.ini" | sed "/^\[data\]/a source = x asr 1 $1" >bench.ini
  mpirun -np "$2" --oversubscribe --bind-to none "$vtb" data epoch --config bench.ini --run.threads=1 --data.workers=1 \
    --log.level=warn "${@:3}" 2>/dev/null | grep '^rank'
}
for data in data/synth/speech.jsonl lhotse_shar:lhotse_shar nemo_tarred:nemo_tarred webdataset:webdataset; do
  for np in 1 2; do
    run "$data" $np | awk -v d="${data%%:*}" -v np=$np '
      { for (i = 1; i <= NF; i++) { if ($i == "examples/s,") e += $(i-1); if ($i == "audio") a += $(i-1) } }
      END { printf "| %s | %d | %.0f | %.0f | %.0f |\n", d, np, e, a, e / np }'
  done
done
batches=$(run lhotse_shar:lhotse_shar 1 | sed 's/.* in \([0-9]*\) batches.*/\1/')
echo
echo "| resume (1 rank, lhotse_shar) | first batch after |"
echo "|---|---|"
for start in 0 $((batches / 2)); do
  run lhotse_shar:lhotse_shar 1 --start-batch $start --max-batches 1 |
    sed "s/.*first batch after \([0-9.]*\) s.*/| start batch $start of $batches | \1 s |/"
done
