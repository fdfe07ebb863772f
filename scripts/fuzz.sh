#!/usr/bin/env bash
# Builds and runs a libFuzzer target with clang (address + undefined-behaviour sanitizers).
#   bash scripts/fuzz.sh safetensors_header|manifest|nemo_archive [SECONDS=60]
# Crashes are written to build-fuzz/<target>/crash-*; the seed corpus is generated on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh safetensors_header|manifest|nemo_archive [seconds]}
seconds=${2:-60}
command -v clang++ >/dev/null || bash scripts/install-deps.sh
out=build-fuzz/$target
mkdir -p "$out/corpus"

libs=()
case $target in
  safetensors_header)
    sources=(model/safetensors_header.cpp tests/fuzz/safetensors_header_fuzz.cpp)
    # Seeds: the reference implementation's test vectors and a two-tensor file.
    seed() { python3 -c "import struct,sys; h=sys.argv[1].encode(); sys.stdout.buffer.write(struct.pack('<Q',len(h))+h+b'\0'*int(sys.argv[2]))" "$1" "$2" >"$out/corpus/$3"; }
    seed '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}' 24 attn0
    seed '{"__metadata__":{"framework":"pt"}}     ' 0 meta
    seed '{"a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}' 16 two
    ;;
  manifest)
    sources=(data/manifest.cpp tests/fuzz/manifest_fuzz.cpp)
    libs=(-lspdlog -lfmt)
    printf '%s' '{"audio_filepath": "a.wav", "duration": 1.5, "offset": 0.2, "context": "hi", "answer": "x"}' >"$out/corpus/speech"
    printf '%s' '{"conversations": [{"from": "User", "value": "a <audio> b"}, {"from": "Assistant", "value": "c"}], "audios": [{"audio_filepath": "/x.wav", "duration": 2}]}' >"$out/corpus/mixed"
    printf '%s' '{"conversations": [{"from": "User", "value": "q"}, {"from": "Assistant", "value": "a"}]}' >"$out/corpus/text"
    ;;
  nemo_archive)
    sources=(model/nemo_archive.cpp model/pickle_rewrite.cpp tests/fuzz/nemo_archive_fuzz.cpp)
    libs=(-larchive -lyaml-cpp)
    # Seeds: a plain and a gzip .nemo whose weights member is the pickle torch.save writes for a state dict
    # (an OrderedDict with _metadata, protocol 2), and that pickle alone.
    python3 - "$out/corpus" <<'PY'
import collections, io, pickle, sys, tarfile
d = collections.OrderedDict([("encoder.w", 1.5), ("encoder.b", [1, 2])])
d._metadata = collections.OrderedDict([("", {"version": 1}), ("encoder", {"version": 1})])
weights = pickle.dumps(d, protocol=2)
config = b"encoder:\n  _target_: nemo.collections.asr.modules.ConformerEncoder\n  d_model: 64\n  att_context_size: [-1, -1]\n"
open(f"{sys.argv[1]}/pickle", "wb").write(weights)
for name, mode in (("nemo", "w"), ("nemo_gz", "w:gz")):
    with tarfile.open(f"{sys.argv[1]}/{name}", mode) as tar:
        for member, data in (("./model_config.yaml", config), ("./model_weights.ckpt", weights)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
PY
    ;;
  *) echo "unknown fuzz target '$target' (known: safetensors_header, manifest, nemo_archive)" >&2; exit 2 ;;
esac

clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
  "${sources[@]}" "${libs[@]}" -o "$out/fuzz"
cd "$out" && ./fuzz -max_total_time="$seconds" -print_final_stats=1 corpus
