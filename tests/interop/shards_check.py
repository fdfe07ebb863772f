"""Sharded data against the real writers and readers (issue 36): lhotse 1.33.0, NeMo 3.0.0, webdataset 1.0.2.

1. `vtb data shard` writes each layout from the synthetic corpus; the library's own reader reads it back —
   lhotse.CutSet.from_shar, NeMo's LazyNeMoTarredIterator, webdataset.WebDataset — with the same ids (keys),
   durations, texts and audio samples as the manifest and its wav files.
2. Lhotse's CutSet.to_shar writes Shar (flac) from the test split; `vtb data epoch` on 2 ranks reads every cut
   exactly once and `vtb train` trains 3 steps from it.
NeMo's writer (scripts/speech_recognition/convert_to_tarred_audio_dataset.py) is not in the wheel, so NeMo's
side is its reader only. usage: shards_check.py VTB SOURCE_DIR WORK_DIR
"""
import glob
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import soundfile

vtb, src, work = sys.argv[1:4]
try:
    import lhotse
    import webdataset
    from nemo.collections.common.data.lhotse.nemo_adapters import LazyNeMoTarredIterator
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
os.chdir(work)
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
subprocess.run([vtb, "data", "synth", "--scale", "0.1"], check=True, capture_output=True)
manifest = [json.loads(l) for l in open("data/synth/asr_train.jsonl")]
by_stem = {os.path.splitext(os.path.basename(m["audio_filepath"]))[0]: m for m in manifest}
failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok: " if ok else "FAIL: ") + what + (f" ({detail})" if detail and not ok else ""))
    failures += not ok


def original(stem):
    samples, rate = soundfile.read(os.path.join("data/synth", by_stem[stem]["audio_filepath"]), dtype="float32")
    return samples, rate


def same_audio(samples, stem):
    ref, _ = original(stem)
    return samples.shape == ref.shape and np.array_equal(samples, ref)


for layout in ["lhotse_shar", "nemo_tarred", "webdataset"]:
    subprocess.run([vtb, "data", "shard", "--format", layout, "--in", "data/synth/asr_train.jsonl", "--out",
                    f"shards/{layout}", "--shard-size", "7"], check=True, capture_output=True)

# Lhotse reads vtb's Shar.
cuts = list(lhotse.CutSet.from_shar(in_dir="shards/lhotse_shar"))
check("lhotse reads every cut of vtb's Shar", sorted(c.id for c in cuts) == sorted(by_stem), f"{len(cuts)} cuts")
bad = [c.id for c in cuts if abs(c.duration - by_stem[c.id]["duration"]) > 1e-6
       or c.supervisions[0].text != by_stem[c.id]["answer"] or not same_audio(c.load_audio()[0], c.id)]
check("lhotse: ids, durations, texts and samples equal the manifest's", not bad, f"differ: {bad[:3]}")

# NeMo reads vtb's tarred layout, shard manifests and tars paired by their shard ids.
nemo = LazyNeMoTarredIterator(manifest_path=sorted(glob.glob("shards/nemo_tarred/sharded_manifests/manifest_*.json")),
                              tar_paths=sorted(glob.glob("shards/nemo_tarred/audio_*.tar")))
nemo_cuts = list(nemo)
stems = [os.path.splitext(c.recording_id)[0] for c in nemo_cuts]
check("NeMo's LazyNeMoTarredIterator reads every entry", sorted(stems) == sorted(by_stem), f"{len(stems)} entries")
bad = [s for s, c in zip(stems, nemo_cuts) if abs(c.duration - by_stem[s]["duration"]) > 1e-6
       or c.supervisions[0].text != by_stem[s]["answer"] or not same_audio(c.load_audio()[0], s)]
check("NeMo: durations, texts and samples equal the manifest's", not bad, f"differ: {bad[:3]}")

# webdataset groups vtb's members into samples by key.
samples = list(webdataset.WebDataset(sorted(glob.glob("shards/webdataset/*.tar")), shardshuffle=False))
keys = [s["__key__"] for s in samples]
check("webdataset reads every sample", sorted(keys) == sorted(by_stem), f"{len(keys)} samples")
bad = []
for s in samples:
    meta = json.loads(s["json"])
    audio, _ = soundfile.read(io.BytesIO(s["wav"]), dtype="float32")
    if meta["answer"] != by_stem[s["__key__"]]["answer"] or meta["duration"] != by_stem[s["__key__"]]["duration"] \
            or not same_audio(audio, s["__key__"]):
        bad.append(s["__key__"])
check("webdataset: texts, durations and samples equal the manifest's", not bad, f"differ: {bad[:3]}")

# Lhotse writes Shar (flac); vtb reads every cut once over 2 ranks, then trains from it.
test = [json.loads(l) for l in open("data/synth/asr_test.jsonl")]
cutset = []
for i, m in enumerate(test):
    rec = lhotse.Recording.from_file(os.path.join("data/synth", m["audio_filepath"]), recording_id=f"test-{i}")
    cut = rec.to_cut()
    cut.supervisions = [lhotse.SupervisionSegment(id=cut.id, recording_id=rec.id, start=0, duration=rec.duration,
                                                  text=m["answer"])]
    cutset.append(cut)
os.makedirs("lhotse_written")
lhotse.CutSet.from_cuts(cutset).to_shar("lhotse_written", fields={"recording": "flac"}, shard_size=5)
# tiny.ini with this one source instead of its four (data.source on the command line adds to the file's).
ini = [l for l in open(f"{src}/configs/tiny.ini") if not l.startswith("source")]
ini.insert(ini.index("[data]\n") + 1, "source = test asr 1 lhotse_shar:lhotse_written\n")
open("shar.ini", "w").writelines(ini)
r = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", vtb, "data", "epoch", "--config",
                    "shar.ini", "--out", "epoch", "--log.level=warn"],
                   capture_output=True, text=True, env=env)
read = [l.split("cut ")[-1].strip() for f in sorted(glob.glob("epoch/rank_*.txt")) for l in open(f)]
ids = sorted(f"test-{i}" for i in range(len(test)))
check("vtb reads lhotse's Shar: every cut exactly once over 2 ranks", r.returncode == 0 and sorted(read) == ids,
      r.stderr[-500:] + f" read {len(read)} of {len(ids)}")
r = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", vtb, "train", "--config",
                    "shar.ini", "--run.dir", "run", "--train.max_steps=3",
                    "--ckpt.every_steps=0", "--run.threads=1", "--log.level=warn"],
                   capture_output=True, text=True, env=env)
losses = [json.loads(l)["loss"] for l in open("run/metrics.jsonl")] if os.path.exists("run/metrics.jsonl") else []
check("vtb trains 3 steps from lhotse's Shar", r.returncode == 0 and len(losses) == 3 and all(np.isfinite(losses)),
      r.stderr[-800:])

print("PASS" if failures == 0 else f"FAIL: {failures} checks failed")
sys.exit(1 if failures else 0)
