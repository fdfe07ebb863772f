"""vtb against NeMo's ASR collection (nemo_toolkit[asr], tests/interop/requirements.txt).

1. NeMo builds a small random FastConformer CTC model (EncDecCTCModel: dw_striding x8, rel_pos attention,
   BatchNorm conv module) with configs/tiny.ini's encoder sizes, every weight and BatchNorm statistic drawn at
   random, and saves it with save_to. `vtb encoder import` reads the .nemo.
2. On real human speech (Debian's pocketsphinx-testdata, LibriVox and spoken card names), `vtb data features`
   must equal NeMo's AudioToMelSpectrogramPreprocessor in eval mode (<= 1e-3 absolute). NeMo 3.0 pads the
   STFT with zeros and counts L // hop frames, so vtb runs with features.pad_mode=constant and
   features.frame_rule=floor; vtb's other convention (reflect, L // hop + 1) is that of older NeMo releases
   and is not checked here.
3. On those features, `vtb encoder forward` must equal NeMo's ConformerEncoder in eval mode (relative L2
   <= 1e-5), and the gradient of sum(output * cotangent) with respect to the features must equal
   torch.autograd's through NeMo's encoder (<= 1e-5).
4. Refusals: a config that differs from the .nemo is refused naming both sides; an archive with a member
   named ../x is refused.

usage: nemo_check.py VTB SOURCE_DIR WORK_DIR
"""
import glob
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import soundfile
import torch

logging.disable(logging.WARNING)
import nemo  # noqa: E402
from nemo.collections.asr.models import EncDecCTCModel  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from common import rel_l2, vtb_config  # noqa: E402

SPEECH = "/usr/share/pocketsphinx/test/data"
FEATURE_TOLERANCE = 1e-3  # absolute, on normalised log-mel values
TOLERANCE = 1e-5  # relative L2
NEMO_FEATURES = ["--features.pad_mode=constant", "--features.frame_rule=floor", "--features.dither=0"]
failures = []


def run(cmd, cwd, label, want_rc=0):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if r.returncode != want_rc:
        failures.append(label)
        print(f"FAIL {label}: {' '.join(cmd[1:3])} exited {r.returncode} (expected {want_rc}):\n{r.stdout}{r.stderr}")
        return None
    return r


def check(label, err, limit, what):
    ok = err <= limit
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {what} {err:.2e} (limit {limit:.0e})")
    if not ok:
        failures.append(label)


def nemo_model(cfg):
    e, f = cfg["encoder"], cfg["features"]
    d_model = int(e["d_model"])
    model_cfg = OmegaConf.create({
        "sample_rate": 16000,
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01,
            "window": "hann", "features": int(f["n_mels"]), "n_fft": 512, "log": True, "frame_splicing": 1,
            "dither": 0.0, "pad_to": 0, "pad_value": 0.0},
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": int(e["n_mels"]), "feat_out": -1, "n_layers": int(e["layers"]), "d_model": d_model,
            "subsampling": "dw_striding", "subsampling_factor": int(e["subsampling_factor"]),
            "subsampling_conv_channels": int(e["subsampling_channels"]), "causal_downsampling": False,
            "ff_expansion_factor": int(e["ff_dim"]) // d_model, "self_attention_model": "rel_pos",
            "n_heads": int(e["heads"]), "att_context_size": [-1, -1], "xscaling": e["xscaling"] == "true",
            "untie_biases": True, "pos_emb_max_len": 5000, "conv_kernel_size": int(e["conv_kernel"]),
            "conv_norm_type": "batch_norm", "dropout": float(e["dropout"]),
            "dropout_pre_encoder": float(e["dropout"]), "dropout_emb": 0.0, "dropout_att": float(e["dropout"])},
        "decoder": {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": d_model, "num_classes": 4,
            "vocabulary": ["a", "b", "c", "d"]},
    })
    torch.manual_seed(0)
    model = EncDecCTCModel(cfg=model_cfg)
    with torch.no_grad():  # every weight, bias and BatchNorm statistic random, so a mis-mapped one shows
        for name, t in list(model.encoder.named_parameters()) + list(model.encoder.named_buffers()):
            if not t.is_floating_point() or name.endswith("pos_enc.pe"):
                continue
            if name.endswith("running_var"):
                t.uniform_(0.5, 1.5)
            elif t.dim() == 1 or "pos_bias" in name:
                t.uniform_(-0.2, 0.2)
    return model.eval()


def recordings():
    files = sorted(glob.glob(f"{SPEECH}/librivox/*.wav")) + sorted(glob.glob(f"{SPEECH}/cards/00[1-5].wav"))
    return files


def features_and_encoder(vtb, tiny, model, encoder_file, work):
    for wav in recordings():
        name = os.path.basename(wav)
        audio, rate = soundfile.read(wav, dtype="float32")
        assert rate == 16000, wav
        with torch.no_grad():
            feats, lengths = model.preprocessor(input_signal=torch.from_numpy(audio)[None],
                                                length=torch.tensor([len(audio)]))
        want = feats[0, :, : int(lengths[0])].numpy()
        out = os.path.join(work, name + ".npy")
        if run([vtb, "data", "features", "--config", tiny, *NEMO_FEATURES, "--audio", wav, "--out", out], work,
               f"features {name}") is None:
            continue
        got = np.load(out)
        if got.shape != want.shape:
            failures.append(f"features {name}")
            print(f"FAIL features {name}: vtb {got.shape}, NeMo {want.shape}")
            continue
        check(f"features {name} ({len(audio) / rate:.1f} s, {want.shape[1]} frames)",
              float(np.abs(got - want).max()), FEATURE_TOLERANCE, "max |vtb - NeMo|")

        # The encoder on NeMo's features, forward and backward.
        x = torch.from_numpy(want)[None].clone().requires_grad_(True)
        encoded, _ = model.encoder(audio_signal=x, length=torch.tensor([want.shape[1]]))
        encoded = encoded[0].transpose(0, 1)  # [T', d_model]
        cotangent = torch.randn(encoded.shape, generator=torch.Generator().manual_seed(len(audio)))
        (encoded * cotangent).sum().backward()
        np.save(os.path.join(work, "cotangent.npy"), cotangent.numpy())
        got_out, got_grad = os.path.join(work, "enc.npy"), os.path.join(work, "grad.npy")
        if run([vtb, "encoder", "forward", "--config", tiny, "--encoder", encoder_file, "--features", out,
                "--out", got_out, "--cotangent", os.path.join(work, "cotangent.npy"), "--grad-out", got_grad], work,
               f"encoder {name}") is None:
            continue
        check(f"encoder forward {name}, output {list(encoded.shape)}", rel_l2(np.load(got_out), encoded.detach().numpy()),
              TOLERANCE, "relative L2")
        check(f"encoder backward {name}, d/d features", rel_l2(np.load(got_grad), x.grad[0].numpy()), TOLERANCE,
              "relative L2")


def refusals(vtb, tiny, nemo_file, work):
    r = run([vtb, "encoder", "import", "--config", tiny, "--encoder.d_model=32", "--encoder.heads=2",
             "--nemo", nemo_file, "--out", os.path.join(work, "no.safetensors")], work, "refuse d_model", want_rc=2)
    if r is not None:
        ok = "encoder.d_model = 64 in the .nemo, encoder.d_model = 32 here" in r.stderr
        print(f"{'ok  ' if ok else 'FAIL'} refuse a config that differs: {r.stderr.strip().splitlines()[-3:]}")
        if not ok:
            failures.append("refusal names both sides")
    hostile = os.path.join(work, "hostile.nemo")
    with tarfile.open(hostile, "w") as tar:
        for member in ("../x", "model_config.yaml"):
            info = tarfile.TarInfo(member)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"{}"))
    r = run([vtb, "encoder", "import", "--config", tiny, "--nemo", hostile, "--out",
             os.path.join(work, "no.safetensors")], work, "refuse ../x", want_rc=1)
    if r is not None:
        ok = "'../x' is outside the archive" in r.stderr and not os.path.exists(os.path.join(os.path.dirname(work), "x"))
        print(f"{'ok  ' if ok else 'FAIL'} refuse a member named ../x: {r.stderr.strip()[-120:]}")
        if not ok:
            failures.append("refusal of ../x")


def main():
    vtb, source, work = sys.argv[1:4]
    if not recordings():
        print(f"SKIP: no recordings under {SPEECH} (apt-get install pocketsphinx-testdata)")
        sys.exit(77)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print(f"nemo_toolkit {nemo.__version__}, torch {torch.__version__}")
    tiny = os.path.join(source, "configs", "tiny.ini")
    model = nemo_model(vtb_config(vtb, tiny))
    nemo_file = os.path.join(work, "fastconformer.nemo")
    model.save_to(nemo_file)
    encoder_file = os.path.join(work, "encoder.safetensors")
    r = run([vtb, "encoder", "import", "--config", tiny, *NEMO_FEATURES, "--nemo", nemo_file, "--out", encoder_file],
            work, "encoder import")
    if r is not None:
        for line in r.stderr.splitlines():
            print("     vtb: " + line.split("] ", 1)[-1])
        features_and_encoder(vtb, tiny, model, encoder_file, work)
    refusals(vtb, tiny, nemo_file, work)
    if failures:
        print(f"FAIL: {len(failures)} check(s): {', '.join(failures)}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
