#!/usr/bin/env bash
# The paper's sweeps as one resumable command (README "Experiments"): joint SFT from the quickstart's stand-ins
# (made first, by the quickstart's own steps, when BASE lacks them) for
#   rank  LoRA rank 4, 16, 64 (lora.alpha = rank × the config's alpha/rank: the update's scale stays fixed)
#   mix   text share 0, 0.15, 0.30 of the mix (the speech sources keep their proportions in the rest)
#   tts   the synthesizers that speak the training corpus: espeak-ng alone, espeak-ng, flite and festival, and
#         the three with waveform augmentation ("+aug": speed 0.9/1.0/1.1, noise and reverberation on half the
#         utterances each). Each corpus is made by `vtb data synth --engines` into data/synth-tts/<engines joined by +>/
#         (same seed: the same sentences and tokenizer); every point is tested on data/synth's splits, whose
#         asr_flite and asr_festival splits are spoken by voices no corpus trains on
# each point with seeds 1..N, then `vtb eval` on every test split; one table and one picture per sweep.
# A point lives in OUT/<sweep>/<value>/seed<k>/: an evaluated point is never trained again, an interrupted one
# resumes from its checkpoint, so killing and restarting the script gives the same tables.
# usage: scripts/experiments.sh [--sweep rank|mix|tts|all] [--seeds N] [--config C] [--steps S] [--ranks "4 16 64"]
#          [--shares "0 0.15 0.30"] [--corpora "espeak-ng espeak-ng,flite,festival ...+aug"] [--base DIR] [--out DIR]
# (all: rank and mix)
# Run from the repository root (data/synth/ and runs/ are relative to where it runs); VTB_BIN_DIR names
# another folder holding vtb and vtb-run than build/launch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sweep=all seeds=1 config=$root/configs/small.ini steps= ranks="4 16 64" shares="0 0.15 0.30"
corpora="espeak-ng espeak-ng,flite,festival espeak-ng,flite,festival+aug"
base=runs/quickstart out=runs/experiments
die() { echo "experiments: $*" >&2; exit 2; }
while (($#)); do
  case $1 in
    --sweep|--seeds|--config|--steps|--ranks|--shares|--corpora|--base|--out)
      (($# >= 2)) || die "$1 needs a value"
      declare "${1#--}=$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (--sweep, --seeds, --config, --steps, --ranks, --shares, --corpora, --base, --out)" ;;
  esac
done
case $sweep in rank) sweeps=(rank) ;; mix) sweeps=(mix) ;; tts) sweeps=(tts) ;; all) sweeps=(rank mix) ;;
  *) die "--sweep $sweep: expected rank, mix, tts or all" ;;
esac
[[ $seeds =~ ^[1-9][0-9]*$ ]] || die "--seeds $seeds: expected a positive whole number"
[[ -z $steps || $steps =~ ^[1-9][0-9]*$ ]] || die "--steps $steps: expected a positive whole number"
[[ -f $config ]] || die "--config $config: no such file"
for r in $ranks; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "--ranks: rank '$r' must be a whole number > 0"; done
for s in $shares; do
  /usr/bin/python3 -c "import sys; s = float(sys.argv[1]); sys.exit(0 if 0 <= s < 1 else 1)" "$s" 2>/dev/null ||
    die "--shares: text share '$s' must be a number in [0, 1)"
done
for c in $corpora; do
  [[ $c =~ ^(espeak-ng|flite|festival)(,(espeak-ng|flite|festival))*(\+aug)?$ ]] ||
    die "--corpora: '$c' must be engines joined by commas (espeak-ng, flite, festival), optionally +aug"
done
grep -qE '^source *= *[^ ]+ +text ' "$config" || die "--config $config has no text source to share the mix with"

bin=${VTB_BIN_DIR:-$root/build/launch}
vtb=$bin/vtb
[[ -x $vtb ]] || die "$vtb is missing: run scripts/quickstart.sh (it installs and builds) or build first"
run2() { "$bin/vtb-run" -n 2 "$@"; }
source "$root/scripts/stand_ins.sh"
mkdir -p "$out" "$base"
[[ -f data/synth/tokenizer.model ]] || $vtb data synth
[[ -f $base/base-llm/config.json ]] || { echo "making the stand-in LLM in $base/base-llm"; make_base_llm "$config" "$base/base-llm"; }
[[ -f $base/encoder.safetensors ]] || { echo "making the stand-in encoder in $base/encoder.safetensors"; make_encoder "$config" "$base/encoder.safetensors"; }

# point_config SWEEP VALUE FILE: the config of one point (overrides go on the command line, the mix in the file).
config_rank=$(sed -n '/^\[lora\]/,/^\[/s/^rank *= *//p' "$config" | head -1)
config_alpha=$(sed -n '/^\[lora\]/,/^\[/s/^alpha *= *//p' "$config" | head -1)
point_args() {
  case $1 in
    rank) echo "--lora.rank=$2 --lora.alpha=$(/usr/bin/python3 -c "print($2 * ${config_alpha:-16} / ${config_rank:-16})")" ;;
    tts) if [[ $2 == *+aug ]]; then echo "--data.speed_factors=0.9,1.0,1.1 --data.noise_prob=0.5 --data.reverb_prob=0.5"; fi ;;
    mix) echo "" ;;
  esac
}
point_config() {  # SWEEP VALUE FILE
  if [[ $1 == mix ]]; then
    /usr/bin/python3 - "$config" "$2" "$3" <<'PY'
import re, sys
config, share, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
lines = open(config).read().splitlines()
source = re.compile(r"^source *= *(\S+) +(\S+) +(\S+) +(.*)$")
speech = sum(float(m.group(3)) for l in lines if (m := source.match(l)) and m.group(2) != "text")
out = []
for l in lines:
    m = source.match(l)
    if m and m.group(2) == "text":
        if share > 0: out.append(f"source = {m.group(1)} text {share:g} {m.group(4)}")
    elif m:
        out.append(f"source = {m.group(1)} {m.group(2)} {float(m.group(3)) / speech * (1 - share):.6g} {m.group(4)}")
    else:
        out.append(l)
open(path, "w").write("\n".join(out) + "\n")
PY
  elif [[ $1 == tts ]]; then
    local engines=${2%+aug}
    local corpus=data/synth-tts/${engines//,/+}  # no comma: SentencePiece lists its inputs with commas
    if [[ ! -f $corpus/tokenizer.model ]]; then
      mkdir -p "$corpus"
      $vtb data synth --engines "$engines" --out "$corpus" >"$corpus/synth.log" 2>&1 ||
        { tail -5 "$corpus/synth.log"; die "tts=$engines: vtb data synth failed (log: $corpus/synth.log)"; }
    fi
    sed -E "/^source *=/s#data/synth/#$corpus/#" "$config" >"$3"
  else
    cp "$config" "$3"
  fi
}

points=()
for s in "${sweeps[@]}"; do
  case $s in rank) values=$ranks ;; mix) values=$shares ;; tts) values=$corpora ;; esac
  for v in $values; do for k in $(seq 1 "$seeds"); do points+=("$s $v $k"); done; done
done
# The estimate: the mean time of points already done here, else of the quickstart's SFT steps.
/usr/bin/python3 - "$out" "${#points[@]}" "$base" "${steps:-0}" <<'PY'
import glob, json, sys
out, n, base, steps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
times = [json.load(open(f)) for f in glob.glob(f"{out}/*/*/seed*/time.json")]
if times:
    each = sum(t["train_s"] + t["eval_s"] for t in times) / len(times)
    print(f"{n} points; about {each:.0f} s each from the {len(times)} done before: {n * each / 60:.0f} min in all (less the points already done)")
else:
    print(f"{n} points; no timing yet: the first point's time is printed when it is done")
PY

i=0
for p in "${points[@]}"; do
  read -r s v k <<<"$p"
  i=$((i + 1))
  dir=$out/$s/$v/seed$k
  label="[$i/${#points[@]}] $s=$v seed=$k"
  if [[ -f $dir/time.json ]]; then echo "$label: done before"; continue; fi
  mkdir -p "$dir"
  point_config "$s" "$v" "$dir/config.ini"
  t0=$(date +%s)
  # vtb train resumes from $dir/train/latest when it exists; a finished run is not trained again.
  if [[ ! -f $dir/trained ]]; then
    # shellcheck disable=SC2046
    run2 train --config "$dir/config.ini" --model.llm="$base/base-llm" --model.encoder="$base/encoder.safetensors" \
      --run.dir "$dir/train" --train.seed="$k" ${steps:+--train.max_steps=$steps} $(point_args "$s" "$v") \
      --log.level=warn >>"$dir/train.log" 2>&1 || { tail -5 "$dir/train.log"; die "$label: training failed (log: $dir/train.log)"; }
    touch "$dir/trained"
  fi
  t1=$(date +%s)
  # shellcheck disable=SC2046
  evaluate "$dir/eval" "$base" --ckpt "$dir/train" >>"$dir/eval.log" 2>&1 || { tail -5 "$dir/eval.log"; die "$label: evaluation failed"; }
  t2=$(date +%s)
  echo "{\"train_s\": $((t1 - t0)), \"eval_s\": $((t2 - t1))}" >"$dir/time.json.tmp" && mv "$dir/time.json.tmp" "$dir/time.json"
  echo "$label train $((t1 - t0)) s eval $((t2 - t1)) s"
done
for s in "${sweeps[@]}"; do /usr/bin/python3 "$root/scripts/sweep_report.py" "$out" "$s"; done
