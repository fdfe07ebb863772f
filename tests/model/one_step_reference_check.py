#!/usr/bin/python3
"""One training step of vtb's whole speech LM, redone in hand-written PyTorch (float64) and compared.

one_step_dump (C++, 2 MPI ranks) runs vtb's own step on uneven per-rank batches and writes the weights before,
each rank's batch, and the weights, loss and gradient norm after. This script rebuilds the model from the
formulas — NeMo's FastConformer (dw_striding subsampling, Transformer-XL relative-position attention
computed here by direct indexing rather than vtb's rel_shift, the convolution module with BatchNorm on batch
statistics), the Conformer modality adapter and projection, the splice of adapter frames in place of each
<audio> placeholder, the Gemma decoder with fused LoRA (Note [LoRA layouts]) — and takes the step with
torch.autograd, torch.nn.utils.clip_grad_norm_ and torch.optim.AdamW. Every rank's batch is its own forward
(BatchNorm sees that rank's batch, as in data parallelism without synchronised BatchNorm); the loss is
Σ cross-entropy over every answer token of every rank ÷ their count.

Pass (float32 vs float64): loss, gradient norm, the whole gradient and every updated parameter within 1e-5
relative, and so is the step itself (after − before); each tensor's gradient within 1e-4.

usage: one_step_reference_check.py DUMP_DIR
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_reference_check import read_safetensors  # noqa: E402  (the format's definition, not vtb's reader)

TOLERANCE = 1e-5


def linear(P, name, x):
    y = x @ P[name + ".weight"].T
    return y + P[name + ".bias"] if name + ".bias" in P else y


def layer_norm(P, name, x):
    return torch.nn.functional.layer_norm(x, x.shape[-1:], P[name + ".weight"], P[name + ".bias"], 1e-5)


def subsample(P, features, lengths):
    """dw_striding: conv 3×3 stride 2 → ReLU, then (depthwise 3×3 stride 2 → pointwise 1×1 → ReLU) per
    further stage; padded time steps are zeroed before each stage and after the last (masked convolution);
    lengths follow NeMo's calc_length floor((L + 2·1 − 3) / 2) + 1."""
    x = features.transpose(1, 2).unsqueeze(1)  # [B, 1, T, F]
    convs = sorted({int(k.split(".")[3]) for k in P if k.startswith("encoder.pre_encode.conv.")})
    stages = [[convs[0]]] + [convs[i:i + 2] for i in range(1, len(convs), 2)]

    def mask(t, L):
        keep = torch.arange(t.shape[2])[None, :] < L[:, None]
        return t * keep[:, None, :, None]

    L = lengths.clone()
    for n, stage in enumerate(stages):
        x = mask(x, L)
        for j in stage:
            w, b = P[f"encoder.pre_encode.conv.{j}.weight"], P[f"encoder.pre_encode.conv.{j}.bias"]
            if w.shape[-1] == 3:  # the stride-2 conv: full on the first stage, depthwise after
                x = torch.nn.functional.conv2d(x, w, b, stride=2, padding=1, groups=1 if n == 0 else w.shape[0])
            else:
                x = torch.nn.functional.conv2d(x, w, b)
        x = torch.relu(x)
        L = torch.div(L + 2 - 3, 2, rounding_mode="floor") + 1
    x = mask(x, L)
    B, C, T, F = x.shape
    return linear(P, "encoder.pre_encode.out", x.transpose(1, 2).reshape(B, T, C * F)), L


def sinusoid(r, d):
    """Transformer-XL's encoding of relative position r (a vector of positions): sin on even, cos on odd."""
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(len(r), d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(r[:, None] * div)
    pe[:, 1::2] = torch.cos(r[:, None] * div)
    return pe


def rel_attention(P, name, x, pad, heads):
    """score(i, j) = ((q_i + u)·k_j + (q_i + v)·W_pos·pe(i − j)) / √d_k, padded keys masked (−10000)."""
    B, T, d = x.shape
    dk = d // heads
    q = linear(P, name + ".linear_q", x).view(B, T, heads, dk)
    k = linear(P, name + ".linear_k", x).view(B, T, heads, dk)
    v = linear(P, name + ".linear_v", x).view(B, T, heads, dk)
    i, j = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="ij")
    p = (sinusoid((i - j).reshape(-1).to(torch.float64), d) @ P[name + ".linear_pos.weight"].T).view(T, T, heads, dk)
    content = torch.einsum("bihd,bjhd->bhij", q + P[name + ".pos_bias_u"], k)
    position = torch.einsum("bihd,ijhd->bhij", q + P[name + ".pos_bias_v"], p)
    scores = (content + position) / math.sqrt(dk)
    scores = scores.masked_fill(pad[:, None, None, :], -10000.0)
    out = torch.einsum("bhij,bjhd->bihd", torch.softmax(scores, -1), v).reshape(B, T, d)
    return linear(P, name + ".linear_out", out)


def conv_module(P, name, x, pad):
    """pointwise (d → 2d) → GLU → zero the padding → depthwise (same padding) → BatchNorm (this batch's
    statistics, padded positions included) → SiLU → pointwise."""
    h = torch.nn.functional.conv1d(x.transpose(1, 2), P[name + ".pointwise_conv1.weight"],
                                   P[name + ".pointwise_conv1.bias"])
    h = torch.nn.functional.glu(h, 1).masked_fill(pad[:, None, :], 0.0)
    w = P[name + ".depthwise_conv.weight"]
    h = torch.nn.functional.conv1d(h, w, P[name + ".depthwise_conv.bias"], padding=(w.shape[-1] - 1) // 2,
                                   groups=w.shape[0])
    mean = h.mean(dim=(0, 2), keepdim=True)
    var = h.var(dim=(0, 2), unbiased=False, keepdim=True)
    h = (h - mean) / torch.sqrt(var + 1e-5) * P[name + ".batch_norm.weight"][None, :, None] \
        + P[name + ".batch_norm.bias"][None, :, None]
    h = torch.nn.functional.silu(h)
    return torch.nn.functional.conv1d(h, P[name + ".pointwise_conv2.weight"], P[name + ".pointwise_conv2.bias"]
                                      ).transpose(1, 2)


def feed_forward(P, name, x):
    return linear(P, name + ".linear2", torch.nn.functional.silu(linear(P, name + ".linear1", x)))


def conformer(P, prefix, x, lengths, heads, xscaling):
    """Macaron Conformer layers: ½FF, attention, convolution, ½FF, LayerNorm."""
    if xscaling:
        x = x * math.sqrt(x.shape[-1])
    pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
    n = 1 + max(int(k.split(".")[2]) for k in P if k.startswith(prefix + ".layers."))
    for i in range(n):
        L = f"{prefix}.layers.{i}"
        x = x + 0.5 * feed_forward(P, L + ".feed_forward1", layer_norm(P, L + ".norm_feed_forward1", x))
        x = x + rel_attention(P, L + ".self_attn", layer_norm(P, L + ".norm_self_att", x), pad, heads)
        x = x + conv_module(P, L + ".conv", layer_norm(P, L + ".norm_conv", x), pad)
        x = x + 0.5 * feed_forward(P, L + ".feed_forward2", layer_norm(P, L + ".norm_feed_forward2", x))
        x = layer_norm(P, L + ".norm_out", x)
    return x


def gemma_hidden(P, c, x):
    """The Gemma decoder on one sequence of input embeddings [T, hidden] (already scaled), with fused LoRA:
    q|k|v share one A (B's rows stacked q, k, v), gate|up likewise; o and down have their own."""
    scale = c["lora"]["alpha"] / c["lora"]["rank"]
    g = c["llm"]
    T, H, KV, hd = x.shape[0], g["heads"], g["kv_heads"], g["head_dim"]

    def lora(name, h):
        return scale * (h @ P[name + ".A"].T) @ P[name + ".B"].T

    def rmsnorm(name, h):
        return h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + g["rms_eps"]) * (1 + P[name + ".weight"])

    def rope(t):
        inv = 1.0 / g["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        f = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        emb = torch.cat([f, f], -1)
        return t * emb.cos() + torch.cat([-t[..., hd // 2:], t[..., :hd // 2]], -1) * emb.sin()

    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    n = 1 + max(int(k.split(".")[3]) for k in P if k.startswith("llm.model.layers."))
    for i in range(n):
        p = f"llm.model.layers.{i}."
        h = rmsnorm(p + "input_layernorm", x)
        qkv = torch.cat([linear(P, p + f"self_attn.{t}_proj", h) for t in "qkv"], -1) + lora(p + "self_attn.qkv_lora", h)
        q, k, v = qkv.split([H * hd, KV * hd, KV * hd], -1)
        q, k, v = (t.view(T, -1, hd).transpose(0, 1) for t in (q, k, v))
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(H // KV, 0), v.repeat_interleave(H // KV, 0)
        o = torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(causal, float("-inf")), -1) @ v
        o = o.transpose(0, 1).reshape(T, H * hd)
        x = x + linear(P, p + "self_attn.o_proj", o) + lora(p + "self_attn.o_lora", o)
        h = rmsnorm(p + "post_attention_layernorm", x)
        gate_up = torch.cat([linear(P, p + "mlp.gate_proj", h), linear(P, p + "mlp.up_proj", h)], -1) \
            + lora(p + "mlp.gate_up_lora", h)
        gate, up = gate_up.chunk(2, -1)
        act = 0.5 * gate * (1 + torch.tanh(math.sqrt(2 / math.pi) * (gate + 0.044715 * gate ** 3)))
        x = x + linear(P, p + "mlp.down_proj", act * up) + lora(p + "mlp.down_lora", act * up)
    return rmsnorm("llm.model.norm", x)


def rank_loss_sum(P, c, batch):
    """Σ cross-entropy over this batch's answer tokens, and their count."""
    frames, L = subsample(P, batch["features"].to(torch.float64), batch["feature_lengths"])
    frames = conformer(P, "encoder", frames, L, c["encoder"]["heads"], c["encoder"]["xscaling"])
    adapted = conformer(P, "modality_adapter", linear(P, "modality_adapter.pre_encode", frames), L,
                        c["adapter"]["heads"], c["adapter"]["xscaling"])
    adapted = linear(P, "proj", adapted)
    embed = P["llm.model.embed_tokens.weight"]
    total, count, segment = 0.0, 0, 0
    for b in range(batch["ids"].shape[0]):
        n = int(batch["lengths"][b])
        ids, answer = batch["ids"][b, :n].tolist(), batch["loss_mask"][b, :n].tolist()
        rows, targets = [], []  # targets[s]: the token at s (an answer token) or None
        for t, tok in enumerate(ids):
            if tok == c["audio_token_id"]:
                rows.append(adapted[segment, :int(L[segment])])  # adapter frames enter unscaled
                targets += [None] * int(L[segment])
                segment += 1
            else:
                rows.append(embed[tok][None, :] * math.sqrt(embed.shape[1]))  # Gemma scales text embeddings
                targets.append(tok if answer[t] else None)
        hidden = gemma_hidden(P, c, torch.cat(rows, 0))
        where = [s for s in range(len(targets) - 1) if targets[s + 1] is not None]  # s predicts s + 1
        logits = hidden[where] @ embed.T
        total = total + torch.nn.functional.cross_entropy(
            logits, torch.tensor([targets[s + 1] for s in where]), reduction="sum")
        count += len(where)
    assert segment == batch["features"].shape[0], "every audio segment spliced in"
    return total, count


def relative(got, want):
    return (got - want).norm().item() / max(want.norm().item(), 1e-30)


def main():
    d = sys.argv[1]
    c = json.load(open(os.path.join(d, "config.json")))
    step = json.load(open(os.path.join(d, "step.json")))
    init = read_safetensors(os.path.join(d, "init.safetensors"))
    after = read_safetensors(os.path.join(d, "after.safetensors"))
    grads = read_safetensors(os.path.join(d, "gradients.safetensors"))
    batches = [read_safetensors(os.path.join(d, f"batch_{r}.safetensors")) for r in range(c["ranks"])]

    # Trainable: the speech side and LoRA; the LLM's base is frozen.
    P = {k: v.to(torch.float64).requires_grad_(not k.startswith("llm.") or k.endswith(("_lora.A", "_lora.B")))
         for k, v in init.items()}
    trainable = [k for k in P if P[k].requires_grad]
    sums = [rank_loss_sum(P, c, b) for b in batches]
    tokens = sum(n for _, n in sums)
    loss = sum(s for s, _ in sums) / tokens
    loss.backward()

    params = [P[k] for k in trainable]
    norm = torch.nn.utils.clip_grad_norm_(params, c["clip"]).item()
    # Weight decay off for vectors (norms, biases) and the position biases u, v.
    no_decay = [P[k] for k in trainable if P[k].dim() < 2 or k.endswith(("pos_bias_u", "pos_bias_v"))]
    decay = [P[k] for k in trainable if not (P[k].dim() < 2 or k.endswith(("pos_bias_u", "pos_bias_v")))]
    a = c["adamw"]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    opt.step()

    failures = 0

    def report(label, err, limit=TOLERANCE):
        nonlocal failures
        ok = err <= limit
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}: relative error {err:.2e} (limit {limit:g})")

    print(f"reference: loss {loss.item():.6f} over {tokens} answer tokens on {c['ranks']} ranks, "
          f"gradient norm {norm:.6f} (clipped to {c['clip']}); vtb: loss {step['loss']:.6f}, "
          f"norm {step['grad_norm']:.6f}, {step['tokens']:g} tokens")
    if step["tokens"] != tokens or sorted(after) != sorted(trainable) or sorted(grads) != sorted(trainable):
        print(f"FAIL answer tokens (vtb {step['tokens']}, reference {tokens}) or the trainable parameters differ: "
              f"{sorted(set(after) ^ set(trainable))}")
        return 1
    report("loss", abs(step["loss"] - loss.item()) / loss.item())
    report("gradient norm before clipping", abs(step["grad_norm"] - norm) / norm)
    if norm <= c["clip"]:
        print(f"FAIL the gradient norm {norm:.6f} is within the clip {c['clip']}: clipping is not exercised")
        failures += 1

    # The gradient AdamW stepped with (averaged over ranks, clipped). Some tensors' gradient is zero by
    # construction: a bias before BatchNorm (the norm removes it), a key bias (softmax ignores a constant
    # score per query). There both must be rounding noise, far below the rest.
    g_ref = {k: P[k].grad for k in trainable}
    g_vtb = {k: grads[k].to(torch.float64) for k in trainable}
    total = torch.cat([g.flatten() for g in g_ref.values()]).norm().item()
    report(f"gradient, all {len(trainable)} trainable tensors",
           relative(torch.cat([g_vtb[k].flatten() for k in trainable]),
                    torch.cat([g_ref[k].flatten() for k in trainable])))
    zero = [k for k in trainable if g_ref[k].norm().item() <= 1e-12 * total]
    worst = max((k for k in trainable if k not in zero), key=lambda k: relative(g_vtb[k], g_ref[k]))
    for k in trainable:
        if k in zero:
            noise = g_vtb[k].norm().item() / total
            failures += noise > 1e-6
            print(f"{'ok  ' if noise <= 1e-6 else 'FAIL'} gradient of {k}: zero by construction; vtb's is "
                  f"{noise:.1e} of the whole gradient's norm (limit 1e-06)")
        elif relative(g_vtb[k], g_ref[k]) > 10 * TOLERANCE or k == worst:
            report(f"gradient of {k} {list(P[k].shape)}" + (" (the worst tensor)" if k == worst else ""),
                   relative(g_vtb[k], g_ref[k]), 10 * TOLERANCE)

    # Updated parameters. AdamW's first step moves each value by lr·g/(|g| + eps): where |g| is near eps,
    # float32 rounding of g decides the step, so those values (and the zero-gradient tensors) are left out.
    worst_err, worst_key, left_out, compared = 0.0, None, 0, 0
    moved_vtb, moved_ref = [], []
    for k in trainable:
        keep = g_ref[k].abs() >= 100 * a["eps"]
        left_out += int((~keep).sum())
        compared += int(keep.sum())
        if not keep.any():
            continue
        err = relative(after[k].to(torch.float64)[keep], P[k].detach()[keep])
        if err > worst_err:
            worst_err, worst_key = err, k
        moved_vtb.append((after[k].to(torch.float64) - init[k].to(torch.float64))[keep])
        moved_ref.append((P[k].detach() - init[k].to(torch.float64))[keep])
    report(f"updated parameters, worst tensor {worst_key} ({compared} values; {left_out} with |g| < 100·eps left out)",
           worst_err)
    report("the step, after − before, all compared values", relative(torch.cat(moved_vtb), torch.cat(moved_ref)))
    print("PASS" if failures == 0 else f"{failures} FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
