#!/usr/bin/python3
"""Checks `vtb lm logits` against an independent float64 implementation of the Hugging Face Gemma-1 and
Llama forward pass (transformers' modeling_gemma.py / modeling_llama.py, written out here from the
formulas in docs/sources.md §2), on small random models that this script writes in
Hugging Face layout with its own safetensors writer: F32 and BF16 weights, single-file and sharded.

With a third argument, a Hugging Face folder that `vtb lm pretrain` wrote is checked the same way: its
config.json and safetensors, read here by this script's own reader, must give the logits vtb computes.

usage: hf_reference_check.py VTB_BINARY WORK_DIR [PRETRAINED_FOLDER]
"""
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch

TOLERANCE = 1e-5  # relative L2 error, float32 vs float64


def tensor_bytes(t, dtype):
    if dtype == "BF16":
        return t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()
    return t.to(torch.float32).contiguous().numpy().tobytes()


def write_safetensors(path, tensors, dtype):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def stored(t, dtype):
    """The values the file holds, in float64."""
    return (t.to(torch.bfloat16) if dtype == "BF16" else t.to(torch.float32)).to(torch.float64)


def make_model(folder, family, dtype, sharded, seed):
    gemma = family == "gemma"
    c = dict(hidden=48, inter=96, layers=2, heads=4, kv=1 if gemma else 2, head_dim=24 if gemma else 12,
             vocab=101, eps=1e-6 if gemma else 1e-5, theta=10000.0 if gemma else 500000.0, tied=gemma)
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *shape, std=0.2: torch.randn(*shape, generator=g, dtype=torch.float64) * std
    W = {"model.embed_tokens.weight": rnd(c["vocab"], c["hidden"], std=0.5)}
    for i in range(c["layers"]):
        p = f"model.layers.{i}."
        W[p + "input_layernorm.weight"] = rnd(c["hidden"], std=0.3)
        W[p + "post_attention_layernorm.weight"] = rnd(c["hidden"], std=0.3)
        W[p + "self_attn.q_proj.weight"] = rnd(c["heads"] * c["head_dim"], c["hidden"])
        W[p + "self_attn.k_proj.weight"] = rnd(c["kv"] * c["head_dim"], c["hidden"])
        W[p + "self_attn.v_proj.weight"] = rnd(c["kv"] * c["head_dim"], c["hidden"])
        W[p + "self_attn.o_proj.weight"] = rnd(c["hidden"], c["heads"] * c["head_dim"])
        W[p + "mlp.gate_proj.weight"] = rnd(c["inter"], c["hidden"])
        W[p + "mlp.up_proj.weight"] = rnd(c["inter"], c["hidden"])
        W[p + "mlp.down_proj.weight"] = rnd(c["hidden"], c["inter"])
    W["model.norm.weight"] = rnd(c["hidden"], std=0.3)
    if not c["tied"]:
        W["lm_head.weight"] = rnd(c["vocab"], c["hidden"])

    os.makedirs(folder, exist_ok=True)
    config = {"model_type": family, "hidden_size": c["hidden"], "intermediate_size": c["inter"],
              "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"], "num_key_value_heads": c["kv"],
              "head_dim": c["head_dim"], "rms_norm_eps": c["eps"], "rope_theta": c["theta"],
              "tie_word_embeddings": c["tied"],
              # A vocab_size other than the embedding's rows is refused (tests/e2e/bad_inputs.sh), as transformers does.
              "vocab_size": c["vocab"]}
    if gemma:  # as some hub copies: transformers ignores hidden_act and uses tanh-GELU
        config.update(hidden_act="gelu", hidden_activation=None)
    else:
        config.update(hidden_act="silu")
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)

    file_tensors = dict(W)
    if not gemma:  # old Llama checkpoints carry rotary buffers; loaders ignore them
        file_tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(c["head_dim"] // 2, dtype=torch.float64)
    if sharded:
        names = sorted(file_tensors)
        halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
        weight_map = {}
        for fname, part in halves.items():
            write_safetensors(os.path.join(folder, fname), {n: file_tensors[n] for n in part}, dtype)
            weight_map.update({n: fname for n in part})
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    else:
        write_safetensors(os.path.join(folder, "model.safetensors"), file_tensors, dtype)
    return c, {k: stored(v, dtype) for k, v in W.items()}


def reference_logits(c, W, ids, gemma):
    def rmsnorm(x, w):
        n = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c["eps"])
        return n * (1 + w) if gemma else w * n

    def rope(x, pos):
        d = x.shape[-1]
        inv = 1.0 / c["theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        f = pos[:, None] * inv[None, :]
        emb = torch.cat([f, f], -1)
        rot = torch.cat([-x[..., d // 2:], x[..., : d // 2]], -1)
        return x * emb.cos() + rot * emb.sin()

    T, H, KV, hd = len(ids), c["heads"], c["kv"], c["head_dim"]
    x = W["model.embed_tokens.weight"][ids]
    if gemma:
        x = x * math.sqrt(c["hidden"])
    pos = torch.arange(T, dtype=torch.float64)
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for i in range(c["layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(T, H, hd).transpose(0, 1)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(T, KV, hd).transpose(0, 1)
        q, k = rope(q, pos), rope(k, pos)
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)  # head h uses KV head h // (H/KV)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        o = torch.softmax(s.masked_fill(causal, float("-inf")), -1) @ v
        x = x + o.transpose(0, 1).reshape(T, H * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"])
        gate, up = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        act = 0.5 * gate * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate ** 3))) if gemma \
            else gate * torch.sigmoid(gate)
        x = x + (act * up) @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"])
    head = W["model.embed_tokens.weight"] if c["tied"] else W["lm_head.weight"]
    return x @ head.T


def read_safetensors(path):
    """Every tensor of a safetensors file (F32 or I64), read by the format's definition, not by vtb's reader."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "I64": np.int64}
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + begin: 8 + n + end], dtype=dtypes[e["dtype"]]).copy()
                                     ).reshape(e["shape"])
    return out


def read_folder(folder):
    """config.json and model.safetensors of a folder, read without vtb's code: (config dict, float64 weights)."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    W = {k: v.to(torch.float64) for k, v in read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    c = {"hidden": cfg["hidden_size"], "heads": cfg["num_attention_heads"], "kv": cfg["num_key_value_heads"],
         "head_dim": cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"]),
         "layers": cfg["num_hidden_layers"], "eps": cfg["rms_norm_eps"], "theta": cfg.get("rope_theta", 10000.0),
         "tied": "lm_head.weight" not in W}
    return cfg, c, W


def check(vtb, folder, c, W, ids, gemma, label):
    expected = reference_logits(c, W, torch.tensor(ids), gemma).numpy()
    out = os.path.join(folder, "logits.npy")
    subprocess.run([vtb, "lm", "logits", "--model", folder, "--ids", ",".join(map(str, ids)), "--out", out], check=True)
    got = np.load(out)
    if got.shape != expected.shape or got.dtype != np.float32:
        print(f"FAIL {label}: got {got.dtype} {got.shape}, expected float32 {expected.shape}")
        return False
    rel = np.linalg.norm(got - expected) / np.linalg.norm(expected)
    ok = rel <= TOLERANCE
    print(f"{'ok  ' if ok else 'FAIL'} {label}: relative L2 error {rel:.2e} (limit {TOLERANCE:g}), logits {got.shape}")
    return ok


def main():
    vtb, work = sys.argv[1], sys.argv[2]
    failures = 0
    ids = [2, 5, 7, 100, 0, 42, 42, 13, 99, 1, 64]
    if len(sys.argv) > 3:  # a folder vtb lm pretrain wrote
        cfg, c, W = read_folder(sys.argv[3])
        failures += not check(vtb, sys.argv[3], c, W, ids, cfg["model_type"] == "gemma",
                              f"pretrained {cfg['model_type']} folder {sys.argv[3]}")
    for n, (family, dtype, sharded) in enumerate(
            [("gemma", "F32", False), ("gemma", "BF16", True), ("llama", "F32", True), ("llama", "BF16", False)]):
        folder = os.path.join(work, f"{family}-{dtype}-{'sharded' if sharded else 'single'}")
        c, W = make_model(folder, family, dtype, sharded, seed=n)
        failures += not check(vtb, folder, c, W, ids, family == "gemma",
                              f"{family:5s} {dtype:4s} {'sharded' if sharded else 'single '}")

    # A folder whose weights do not fit its config: every offender named, non-zero exit.
    folder = os.path.join(work, "broken")
    c, W = make_model(folder, "llama", "F32", False, seed=9)
    t = {k: v for k, v in W.items() if k != "model.layers.1.mlp.up_proj.weight"}
    t["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(5, c["hidden"], dtype=torch.float64)
    t["model.layers.0.self_attn.extra.weight"] = torch.zeros(2, dtype=torch.float64)
    write_safetensors(os.path.join(folder, "model.safetensors"), t, "F32")
    r = subprocess.run([vtb, "lm", "logits", "--model", folder, "--ids", "1", "--out", os.path.join(folder, "x.npy")],
                       capture_output=True, text=True)
    wanted = ["missing (1):", "model.layers.1.mlp.up_proj.weight", "wrong shape (1):",
              "model.layers.0.self_attn.k_proj.weight (file [5, 48], model [24, 48])", "unexpected (1):",
              "model.layers.0.self_attn.extra.weight"]
    absent = [w for w in wanted if w not in r.stderr]
    ok = r.returncode != 0 and not absent
    failures += not ok
    print(f"{'ok  ' if ok else 'FAIL'} broken folder: exit {r.returncode}, all offenders named"
          + ("" if ok else f"; missing from the message: {absent}\n{r.stderr}"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
