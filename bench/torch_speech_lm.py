"""vtb's speech LM written as the eager PyTorch a user would write instead: nn.Modules with the same
parameter names as vtb (so vtb's initial_parameters.safetensors loads with load_state_dict), built from the
resolved INI that `vtb config --config F` prints.

The parts (docs/design.md §2–3): NeMo's FastConformer encoder (dw_striding subsampling with masked
convolutions, Transformer-XL relative-position attention with rel_shift, the convolution module with
BatchNorm), the Conformer modality adapter and its projection, the adapter frames spliced in place of each
<audio> placeholder, and the Gemma decoder (frozen) with vtb's fused LoRA (q|k|v share one A, gate|up
likewise; o and down their own). Dropout sits where vtb has it. Attention in the LLM is
scaled_dot_product_attention; logits are computed only where a target is, as vtb does.

The batch is fixed (bench_vs_pytorch.sh: every step trains on it), so the splice is precomputed once as
index tensors; that keeps the step free of data-dependent shapes, which torch.compile needs.
"""
import configparser
import math

import torch
import torch.nn.functional as F
from torch import nn


def read_config(text):
    c = configparser.ConfigParser(inline_comment_prefixes=("#", ";"), strict=False)
    c.read_string(text)
    return c


class FeedForward(nn.Module):
    def __init__(self, d, ff, p):
        super().__init__()
        self.linear1, self.linear2, self.dropout = nn.Linear(d, ff), nn.Linear(ff, d), nn.Dropout(p)

    def forward(self, x):
        return self.linear2(self.dropout(F.silu(self.linear1(x))))


class RelPositionAttention(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.linear_q, self.linear_k, self.linear_v, self.linear_out = (nn.Linear(d, d) for _ in range(4))
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.dk))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.dk))
        self.dropout = nn.Dropout(p)

    def forward(self, x, pos, pad):
        B, T, _ = x.shape
        q = self.linear_q(x).view(B, T, self.h, self.dk)
        k = self.linear_k(x).view(B, T, self.h, self.dk).transpose(1, 2)
        v = self.linear_v(x).view(B, T, self.h, self.dk).transpose(1, 2)
        p = self.linear_pos(pos).view(1, -1, self.h, self.dk).transpose(1, 2)  # [1, H, 2T-1, dk]
        ac = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        bd = (q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1)  # [B, H, T, 2T-1]
        bd = F.pad(bd, (1, 0)).view(B, self.h, 2 * T, T)[:, :, 1:].reshape(B, self.h, T, 2 * T - 1)  # rel_shift
        scores = (ac + bd[..., :T]) / math.sqrt(self.dk)
        attn = self.dropout(torch.softmax(scores.masked_fill(pad[:, None, None, :], -10000.0), -1))
        return self.linear_out((attn @ v).transpose(1, 2).reshape(B, T, -1))


class ConvolutionModule(nn.Module):
    def __init__(self, d, kernel):
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1)
        self.depthwise_conv = nn.Conv1d(d, d, kernel, padding=(kernel - 1) // 2, groups=d)
        self.batch_norm = nn.BatchNorm1d(d)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1)

    def forward(self, x, pad):
        h = F.glu(self.pointwise_conv1(x.transpose(1, 2)), 1).masked_fill(pad[:, None, :], 0.0)
        return self.pointwise_conv2(F.silu(self.batch_norm(self.depthwise_conv(h)))).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, d, heads, ff, kernel, p):
        super().__init__()
        for n in ("norm_feed_forward1", "norm_self_att", "norm_conv", "norm_feed_forward2", "norm_out"):
            setattr(self, n, nn.LayerNorm(d))
        self.feed_forward1, self.feed_forward2 = FeedForward(d, ff, p), FeedForward(d, ff, p)
        self.self_attn = RelPositionAttention(d, heads, p)
        self.conv = ConvolutionModule(d, kernel)
        self.dropout = nn.Dropout(p)

    def forward(self, x, pos, pad):
        x = x + 0.5 * self.dropout(self.feed_forward1(self.norm_feed_forward1(x)))
        x = x + self.dropout(self.self_attn(self.norm_self_att(x), pos, pad))
        x = x + self.dropout(self.conv(self.norm_conv(x), pad))
        x = x + 0.5 * self.dropout(self.feed_forward2(self.norm_feed_forward2(x)))
        return self.norm_out(x)


def relative_positions(T, d):
    pos = torch.arange(T - 1, -T, -1, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(2 * T - 1, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe[None]


class Conformer(nn.Module):
    """The layers of an encoder or adapter, with vtb's input scaling and dropout."""

    def __init__(self, s, d):
        super().__init__()
        self.d, self.xscaling = d, s.getboolean("xscaling", fallback=True)
        self.layers = nn.ModuleList(ConformerLayer(d, s.getint("heads"), s.getint("ff_dim"), s.getint("conv_kernel"),
                                                   s.getfloat("dropout")) for _ in range(s.getint("layers")))
        self.dropout = nn.Dropout(s.getfloat("dropout"))

    def run(self, x, lengths):
        if self.xscaling:
            x = x * math.sqrt(self.d)
        x = self.dropout(x)
        pos = relative_positions(x.shape[1], self.d).to(x.dtype)
        pad = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
        for layer in self.layers:
            x = layer(x, pos, pad)
        return x


class Subsampling(nn.Module):
    """dw_striding: conv 3×3 stride 2, ReLU, then (depthwise 3×3 stride 2, pointwise, ReLU) per stage."""

    def __init__(self, n_mels, channels, factor, d):
        super().__init__()
        self.stages = stages = int(math.log2(factor))
        convs = [nn.Conv2d(1, channels, 3, 2, 1), nn.ReLU()]
        for _ in range(stages - 1):
            convs += [nn.Conv2d(channels, channels, 3, 2, 1, groups=channels), nn.Conv2d(channels, channels, 1), nn.ReLU()]
        self.conv = nn.ModuleList(convs)
        f = n_mels
        for _ in range(stages):
            f = (f - 1) // 2 + 1
        self.out = nn.Linear(channels * f, d)

    def forward(self, features, lengths):
        x, L = features.transpose(1, 2).unsqueeze(1), lengths  # [N, 1, F, mels]
        for m in self.conv:
            if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
                x = x.masked_fill((torch.arange(x.shape[2])[None, :] >= L[:, None])[:, None, :, None], 0.0)
                L = torch.div(L - 1, 2, rounding_mode="floor") + 1
            x = m(x)
        x = x.masked_fill((torch.arange(x.shape[2])[None, :] >= L[:, None])[:, None, :, None], 0.0)
        N, C, T, f = x.shape
        return self.out(x.transpose(1, 2).reshape(N, T, C * f)), L


class Encoder(Conformer):
    def __init__(self, s):
        super().__init__(s, s.getint("d_model"))
        self.pre_encode = Subsampling(s.getint("n_mels"), s.getint("subsampling_channels"),
                                      s.getint("subsampling_factor", fallback=8), self.d)

    def forward(self, features, lengths):
        x, L = self.pre_encode(features, lengths)
        return self.run(x, L), L


class Adapter(Conformer):
    def __init__(self, s, input_dim):
        super().__init__(s, s.getint("d_model"))
        self.pre_encode = nn.Linear(input_dim, self.d)

    def forward(self, frames, lengths):
        return self.run(self.pre_encode(frames), lengths)


class Lora(nn.Module):
    def __init__(self, d_in, d_out, rank, alpha):
        super().__init__()
        self.A, self.B, self.scale = nn.Parameter(torch.zeros(rank, d_in)), nn.Parameter(torch.zeros(d_out, rank)), alpha / rank

    def forward(self, x):
        return (x @ self.A.t()) @ self.B.t() * self.scale


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.zeros(d)), eps

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * (1.0 + self.weight.float())).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, g, lora):
        super().__init__()
        H, KV, hd, d = g.getint("heads"), g.getint("kv_heads"), g.getint("head_dim"), g.getint("hidden")
        self.H, self.KV, self.hd = H, KV, hd
        self.q_proj, self.k_proj = nn.Linear(d, H * hd, bias=False), nn.Linear(d, KV * hd, bias=False)
        self.v_proj, self.o_proj = nn.Linear(d, KV * hd, bias=False), nn.Linear(H * hd, d, bias=False)
        self.qkv_lora, self.o_lora = Lora(d, (H + 2 * KV) * hd, *lora), Lora(H * hd, d, *lora)

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        dq, dk, dv = self.qkv_lora(x).split([self.H * self.hd, self.KV * self.hd, self.KV * self.hd], -1)
        q = (self.q_proj(x) + dq).view(B, T, self.H, self.hd).transpose(1, 2)
        k = (self.k_proj(x) + dk).view(B, T, self.KV, self.hd).transpose(1, 2)
        v = (self.v_proj(x) + dv).view(B, T, self.KV, self.hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=self.H != self.KV)
        o = o.transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(o) + self.o_lora(o)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


class Mlp(nn.Module):
    def __init__(self, g, lora):
        super().__init__()
        d, i = g.getint("hidden"), g.getint("intermediate")
        self.gate_proj, self.up_proj = nn.Linear(d, i, bias=False), nn.Linear(d, i, bias=False)
        self.down_proj = nn.Linear(i, d, bias=False)
        self.gate_up_lora, self.down_lora = Lora(d, 2 * i, *lora), Lora(i, d, *lora)

    def forward(self, x):
        dg, du = self.gate_up_lora(x).chunk(2, -1)
        h = F.gelu(self.gate_proj(x) + dg, approximate="tanh") * (self.up_proj(x) + du)
        return self.down_proj(h) + self.down_lora(h)


class DecoderLayer(nn.Module):
    def __init__(self, g, lora):
        super().__init__()
        eps = g.getfloat("rms_eps")
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(g.getint("hidden"), eps), RMSNorm(g.getint("hidden"), eps)
        self.self_attn, self.mlp = Attention(g, lora), Mlp(g, lora)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Gemma(nn.Module):
    def __init__(self, g, lora):
        super().__init__()
        self.embed_tokens = nn.Embedding(g.getint("vocab"), g.getint("hidden"))
        self.layers = nn.ModuleList(DecoderLayer(g, lora) for _ in range(g.getint("layers")))
        self.norm = RMSNorm(g.getint("hidden"), g.getfloat("rms_eps"))


class Llm(nn.Module):
    def __init__(self, g, lora):
        super().__init__()
        self.model = Gemma(g, lora)


class SpeechLM(nn.Module):
    """The whole model, with the fixed batch's splice precomputed (see set_batch)."""

    def __init__(self, config_text):
        super().__init__()
        c = read_config(config_text)
        g = c["llm"]
        if g.get("family") != "gemma" or not g.getboolean("tie_embeddings", fallback=True):
            raise SystemExit("bench: the PyTorch model is written for Gemma with tied embeddings")
        if c["lora"].get("layout", "fused") != "fused" or c["lora"].getfloat("dropout", fallback=0) != 0:
            raise SystemExit("bench: the PyTorch model is written for vtb's fused LoRA without dropout")
        lora = (c["lora"].getint("rank"), c["lora"].getfloat("alpha"))
        self.encoder = Encoder(c["encoder"])
        self.modality_adapter = Adapter(c["adapter"], c["encoder"].getint("d_model"))
        self.proj = nn.Linear(c["adapter"].getint("d_model"), g.getint("hidden"))
        self.llm = Llm(g, lora)
        self.hd, self.theta, self.hidden = g.getint("head_dim"), g.getfloat("rope_theta"), g.getint("hidden")

    def freeze_llm_base(self):
        for name, p in self.named_parameters():
            p.requires_grad_(not name.startswith("llm.") or "_lora." in name)

    def set_batch(self, batch, audio_id):
        """Precomputes, for the fixed batch, where every spliced position comes from (a text embedding or an
        adapter frame), the positions that carry a loss and their targets."""
        ids, lengths, mask = batch["ids"], batch["lengths"], batch["loss_mask"].bool()
        B, T = ids.shape
        N, _, Fr = batch["features"].shape
        S4, frames = Fr, batch["feature_lengths"].clone()
        for _ in range(self.encoder.pre_encode.stages):  # NeMo's calc_length, per stride-2 stage
            S4, frames = (S4 - 1) // 2 + 1, torch.div(frames - 1, 2, rounding_mode="floor") + 1
        rows, targets, seg = [], [], 0
        for b in range(B):
            src, tgt = [], []
            for t in range(int(lengths[b])):
                if int(ids[b, t]) == audio_id:
                    n = int(frames[seg])
                    src += [B * T + seg * S4 + f for f in range(n)]
                    tgt += [-100] * n
                    seg += 1
                else:
                    src.append(b * T + t)
                    tgt.append(int(ids[b, t]) if mask[b, t] else -100)
            rows.append(src)
            targets.append(tgt[1:] + [-100])  # position s predicts s + 1
        S = max(len(r) for r in rows)
        zero = B * T + N * S4  # a zero row for padding
        self.register_buffer("splice", torch.tensor([r + [zero] * (S - len(r)) for r in rows]), persistent=False)
        flat = torch.tensor([t + [-100] * (S - len(t)) for t in targets]).view(-1)
        self.register_buffer("where", flat.ne(-100).nonzero().squeeze(1), persistent=False)
        self.register_buffer("targets", flat[self.where], persistent=False)
        inv = 1.0 / self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd)
        f = torch.arange(S, dtype=torch.float32)[:, None] * inv
        emb = torch.cat([f, f], -1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, ids, features, feature_lengths):
        """Σ cross-entropy over the batch's answer tokens."""
        frames, L = self.encoder(features, feature_lengths)
        audio = self.proj(self.modality_adapter(frames, L))
        text = self.llm.model.embed_tokens(ids) * math.sqrt(self.hidden)
        table = torch.cat([text.reshape(-1, self.hidden), audio.reshape(-1, self.hidden).to(text.dtype),
                           text.new_zeros(1, self.hidden)])
        x = table[self.splice]
        cos, sin = self.cos.to(x.dtype), self.sin.to(x.dtype)
        for layer in self.llm.model.layers:
            x = layer(x, cos, sin)
        x = self.llm.model.norm(x).reshape(-1, self.hidden)[self.where]
        logits = (x @ self.llm.model.embed_tokens.weight.t()).float()
        return F.cross_entropy(logits, self.targets, reduction="sum")
