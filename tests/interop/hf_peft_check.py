"""vtb against the real Hugging Face libraries (tests/interop/requirements.txt), in and out.

In:  tiny random GemmaForCausalLM and LlamaForCausalLM made and saved by transformers (one file, sharded,
     bf16), their config.json fields those of the real Gemma-2B and Llama-3-8B with the sizes shrunk;
     `vtb lm logits` must equal the library's float32 logits (relative L2 <= 1e-5).
Out: a `tiny` run on a transformers-made base, for both lora.layouts, exported with --merged;
     PeftModel.from_pretrained(base, adapter/) and AutoModelForCausalLM(merged/) must give the logits vtb
     computes for the trained LLM (`vtb lm logits --ckpt`, LoRA applied, not merged) (<= 1e-5).

usage: hf_peft_check.py VTB SOURCE_DIR WORK_DIR
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import peft
import torch
import transformers
from common import rel_l2, vtb_config
from transformers import AutoModelForCausalLM, GemmaConfig, GemmaForCausalLM, LlamaConfig, LlamaForCausalLM

TOLERANCE = 1e-5
IDS = [2, 17, 5, 200, 31, 7, 99, 250, 3, 12, 64, 128]

# The fields of the real config.json files (Gemma-2B: google/gemma-2b; Llama-3-8B: meta-llama/Meta-Llama-3-8B),
# sizes shrunk; everything else as published.
GEMMA_2B = dict(vocab_size=256000, hidden_size=2048, intermediate_size=16384, num_hidden_layers=18,
                num_attention_heads=8, num_key_value_heads=1, head_dim=256, max_position_embeddings=8192,
                rope_theta=10000.0, rms_norm_eps=1e-6, hidden_act="gelu", hidden_activation=None,
                attention_bias=False, attention_dropout=0.0, tie_word_embeddings=True, bos_token_id=2,
                eos_token_id=1, pad_token_id=0, initializer_range=0.02)
LLAMA_3_8B = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                  rope_theta=500000.0, rms_norm_eps=1e-5, hidden_act="silu", attention_bias=False,
                  attention_dropout=0.0, mlp_bias=False, pretraining_tp=1, tie_word_embeddings=False,
                  bos_token_id=128000, eos_token_id=128001, initializer_range=0.02, rope_scaling=None)
SHRUNK = dict(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=2)
failures = []


def vtb_logits(vtb, source, work, label):
    out = os.path.join(work, label.replace(" ", "_").replace(",", "") + ".npy")
    args = [vtb, "lm", "logits", *source, "--ids", ",".join(map(str, IDS)), "--out", out]
    r = subprocess.run(args, cwd=work, capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(label)
        print(f"FAIL {label}: vtb lm logits exited {r.returncode}:\n{r.stdout}{r.stderr}")
        return None
    return np.load(out)


def library_logits(model):
    model.eval()
    with torch.no_grad():
        return model(torch.tensor([IDS])).logits[0].float().numpy()


def compare(label, got, want):
    if got is None:
        return
    err = rel_l2(got, want)
    ok = got.shape == want.shape and err <= TOLERANCE
    print(f"{'ok  ' if ok else 'FAIL'} {label}: relative L2 {err:.2e} (limit {TOLERANCE:.0e}), logits {list(got.shape)}")
    if not ok:
        failures.append(label)


def hf_in(vtb, work):
    for name, cls, cfg_cls, fields, heads in [
        ("gemma", GemmaForCausalLM, GemmaConfig, GEMMA_2B, dict(num_attention_heads=4, num_key_value_heads=1, head_dim=16)),
        ("llama", LlamaForCausalLM, LlamaConfig, LLAMA_3_8B, dict(num_attention_heads=4, num_key_value_heads=2)),
    ]:
        torch.manual_seed(0)
        model = cls(cfg_cls(**{**fields, **SHRUNK, **heads}))
        with torch.no_grad():  # Gemma's norms start at 0 (weight 1): give every weight something to show
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        for variant, kwargs in [("one file", {}), ("sharded", {"max_shard_size": "40KB"})]:
            folder = os.path.join(work, f"{name}_{variant.replace(' ', '_')}")
            model.save_pretrained(folder, **kwargs)
            shards = len([f for f in os.listdir(folder) if f.endswith(".safetensors")])
            compare(f"HF in: {name}, {variant} ({shards} safetensors)",
                    vtb_logits(vtb, ["--model", folder], work, f"{name} {variant}"), library_logits(model))
        folder = os.path.join(work, f"{name}_bf16")
        model.to(torch.bfloat16).save_pretrained(folder)
        # The library's float32 model on the bf16 weights, as vtb computes it.
        reloaded = cls.from_pretrained(folder, dtype=torch.float32)
        compare(f"HF in: {name}, bf16 weights", vtb_logits(vtb, ["--model", folder], work, f"{name} bf16"),
                library_logits(reloaded))


def peft_out(vtb, source, work):
    tiny = os.path.join(source, "configs", "tiny.ini")
    llm = vtb_config(vtb, tiny)["llm"]
    torch.manual_seed(1)
    base = GemmaForCausalLM(GemmaConfig(**{**GEMMA_2B, **dict(
        vocab_size=int(llm["vocab"]), hidden_size=int(llm["hidden"]), intermediate_size=int(llm["intermediate"]),
        num_hidden_layers=int(llm["layers"]), num_attention_heads=int(llm["heads"]),
        num_key_value_heads=int(llm["kv_heads"]), head_dim=int(llm["head_dim"]))}))
    base_dir = os.path.join(work, "peft_base")
    base.save_pretrained(base_dir)
    subprocess.run([vtb, "data", "synth", "--scale", "0.05"], cwd=work, check=True, capture_output=True)
    for layout in ["fused", "separate"]:
        run = os.path.join(work, f"run_{layout}")
        out = os.path.join(work, f"export_{layout}")
        shutil.rmtree(out, ignore_errors=True)
        train = [vtb, "train", "--config", tiny, "--model.llm=" + base_dir, f"--lora.layout={layout}",
                 "--run.dir", run, "--train.max_steps=4", "--train.lr=0.01", "--log.level=warn"]
        for cmd in (train, [vtb, "ckpt", "export", run, "--out", out, "--merged"]):
            r = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
            if r.returncode != 0:
                failures.append(f"PEFT out {layout}")
                print(f"FAIL PEFT out ({layout}): {' '.join(cmd[1:3])} exited {r.returncode}:\n{r.stdout}{r.stderr}")
                return
        want = vtb_logits(vtb, ["--ckpt", run], work, f"trained {layout}")
        untouched = library_logits(AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32))
        if want is None:
            continue
        # The LoRA must have moved the logits, or the comparisons below would not see it.
        moved = rel_l2(want, untouched)
        print(f"     ({layout}) trained LoRA moves the logits by {moved:.2e} (relative L2)")
        if moved < 1e-4:
            failures.append(f"LoRA did not train ({layout})")
            print(f"FAIL ({layout}): the trained LoRA leaves the logits as they were")
        adapted = peft.PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32), os.path.join(out, "adapter"))
        compare(f"PEFT out ({layout}): PeftModel(base, adapter/) vs vtb", library_logits(adapted), want)
        merged = AutoModelForCausalLM.from_pretrained(os.path.join(out, "merged"), dtype=torch.float32)
        compare(f"PEFT out ({layout}): AutoModelForCausalLM(merged/) vs vtb", library_logits(merged), want)


def main():
    vtb, source, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    print(f"transformers {transformers.__version__}, peft {peft.__version__}, torch {torch.__version__}")
    hf_in(vtb, work)
    peft_out(vtb, source, work)
    if failures:
        print(f"FAIL: {len(failures)} check(s): {', '.join(failures)}")
        sys.exit(1)
    print("PASS")


if __name__ == "__main__":
    main()
