#!/usr/bin/python3
"""Checks `vtb data features` against an independent implementation of the docs/design.md §2 recipe on Debian's
python3-torch and python3-torchaudio: the Slaney mel filterbank against torchaudio's melscale_fbanks
(max abs diff ≤ 1e-6) and normalised features (max abs diff ≤ 1e-3) for both STFT conventions.

usage: features_reference_check.py VTB_BINARY WORK_DIR
"""
import math
import os
import subprocess
import sys
import wave

import numpy as np
import torch
import torchaudio


def write_test_wav(path, seconds=1.2345, rate=16000):
    """A chirp with a little noise, 16-bit mono, written with Python's wave module."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    x = 0.5 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2)) + 0.01 * rng.standard_normal(t.size)
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768.0


def reference_features(x, pad_mode, plus_one):
    x = torch.from_numpy(x)
    x = torch.cat([x[:1], x[1:] - 0.97 * x[:-1]])
    spec = torch.stft(x, n_fft=512, hop_length=160, win_length=400, window=torch.hann_window(400, periodic=False),
                      center=True, pad_mode=pad_mode, return_complex=True)
    power = spec.abs() ** 2
    fb = torchaudio.functional.melscale_fbanks(257, 0.0, 8000.0, 128, 16000, norm="slaney", mel_scale="slaney")
    logmel = torch.log(fb.T @ power + 2.0 ** -24)
    valid = x.numel() // 160 + (1 if plus_one else 0)
    logmel = logmel[:, :valid]
    mean = logmel.mean(1, keepdim=True)
    std = logmel.std(1, unbiased=True, keepdim=True) + 1e-5
    return ((logmel - mean) / std).numpy(), fb.numpy()


def main():
    vtb, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    wav = os.path.join(work, "chirp.wav")
    x = write_test_wav(wav)
    failures = 0
    for pad_mode, rule in [("reflect", "plus_one"), ("constant", "floor")]:
        out, fb_out = os.path.join(work, f"f-{pad_mode}.npy"), os.path.join(work, f"fb-{pad_mode}.npy")
        subprocess.run([vtb, "data", "features", "--audio", wav, "--out", out, "--filterbank-out", fb_out,
                        f"--features.pad_mode={pad_mode}", f"--features.frame_rule={rule}"], check=True)
        expected, fb = reference_features(x, pad_mode, rule == "plus_one")
        got, got_fb = np.load(out), np.load(fb_out)
        fb_diff = np.abs(got_fb - fb).max()
        ok_fb = got_fb.shape == fb.shape and fb_diff <= 1e-6
        ok = got.shape == expected.shape and np.abs(got - expected).max() <= 1e-3
        failures += (not ok) + (not ok_fb)
        diff = np.abs(got - expected).max() if got.shape == expected.shape else math.inf
        print(f"{'ok  ' if ok_fb else 'FAIL'} filterbank {fb.shape}: max abs diff {fb_diff:.2e} (limit 1e-6)")
        print(f"{'ok  ' if ok else 'FAIL'} features {pad_mode}/{rule}: shape {got.shape} (expected {expected.shape}), "
              f"max abs diff {diff:.2e} (limit 1e-3)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
