#!/usr/bin/env bash
# vtb data synth with the three engines and real English (issue 39): the same command twice, each from a fresh
# process, gives the same corpus byte for byte (manifests and every WAV); the summary lists each engine's
# voices and the one it holds out; oov.json has a rate for every test split; a bad --engines or --prose is
# refused naming the flag, before anything is written.
#   synth_engines.sh VTB SOURCE_DIR WORK_DIR
set -uo pipefail
vtb=$1 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

for run in 1 2; do  # the same command in two folders (manifests name the folder they were made in)
  mkdir -p "run$run"
  (cd "run$run" && "$vtb" data synth --engines espeak-ng,flite,festival --scale 0.05 --prose 60 --out a) \
    >"synth$run.log" 2>&1 || { tail -5 "synth$run.log"; fail "data synth, run $run"; }
done
diff -r run1/a run2/a >diff.txt || { head -5 diff.txt; fail "two runs of the same command differ"; }
mv run1/a a && cp synth1.log a.log
wavs=$(find a -name '*.wav' | wc -l)
((wavs > 50)) || fail "only $wavs WAV files"
cat a.log
for engine in espeak-ng flite festival; do
  grep -qE "^voices of $engine: .+\([0-9]+\).*; held out for testing: " a.log || fail "no voices of $engine in the summary"
  [[ -s a/asr_${engine}_test.jsonl ]] || fail "no asr_${engine}_test.jsonl"
done
for f in asr_prose_train asr_prose_test mixed_multiturn_test text_multiturn_test; do
  [[ -s a/$f.jsonl ]] || fail "no $f.jsonl"
done
/usr/bin/python3 - a <<'PY' || fail "oov.json"
import json, pathlib, sys
d = pathlib.Path(sys.argv[1])
oov = json.loads((d / "oov.json").read_text())
tests = sorted(p.name for p in d.glob("*_test.jsonl"))
assert sorted(oov) == tests, (sorted(oov), tests)
for name, r in oov.items():
    assert 0 <= r["unseen"] <= r["words"] and abs(r["rate"] - r["unseen"] / max(r["words"], 1)) < 1e-12, (name, r)
# Real English held out has words 60 training sentences never use.
assert oov["asr_prose_test.jsonl"]["unseen"] > 0, oov["asr_prose_test.jsonl"]
print("oov:", {k: round(v["rate"], 3) for k, v in oov.items()})
PY

for bad in --engines=espeak-ng,mbrola --engines=flite,flite --prose=-1; do
  if "$vtb" data synth "$bad" --out bad >bad.log 2>&1; then fail "$bad was accepted"; fi
  grep -q -- "${bad%%=*}" bad.log || { cat bad.log; fail "$bad: the error does not name the flag"; }
  [[ ! -e bad ]] || fail "$bad: wrote bad/ before refusing"
done
echo "PASS: synth_engines ($wavs WAV files, identical twice)"
