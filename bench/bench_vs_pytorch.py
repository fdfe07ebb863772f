"""vtb against the eager PyTorch a user would write instead (bench/torch_speech_lm.py) and that model under
torch.compile: the same model from the same config, the same fixed batch every step, the same optimizer
(AdamW with vtb's decay groups, global-norm clipping), on the same cores. See bench_vs_pytorch.sh.

  bench_vs_pytorch.py run VTB CONFIG STEPS ROUNDS     the whole benchmark: batch, check, A B A B timing, table
  bench_vs_pytorch.py check VTB CONFIG                the check alone (tests/CMakeLists.txt: e2e.vs_pytorch_model)
  bench_vs_pytorch.py worker ...                      one PyTorch run (under torchrun for several ranks)
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import safetensors.torch
import sentencepiece
import torch
import torch.distributed as dist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_speech_lm import SpeechLM, read_config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS, AUDIO_FRAMES, POSITIONS, ANSWER = 8, 200, 78, 20  # global batch 8 × 2.0 s, 78 LLM positions per example
WARMUP = 5  # steps not counted (torch.compile compiles in step 1)


def read_safetensors(path):
    return safetensors.torch.load_file(path)


def make_batch(audio_id, vocab, seed=7):
    """8 examples, each: <bos>, prompt, one 2.0 s <audio>, prompt, 20 answer tokens; 78 LLM positions."""
    g = torch.Generator().manual_seed(seed)
    frames = AUDIO_FRAMES
    for _ in range(3):
        frames = (frames - 1) // 2 + 1
    text = POSITIONS - frames + 1  # the placeholder becomes `frames` positions
    ids = torch.randint(10, vocab, (ROWS, text), generator=g)
    ids[:, 0] = 2  # <bos>
    ids[:, 5] = audio_id
    mask = torch.zeros(ROWS, text, dtype=torch.long)
    mask[:, -ANSWER:] = 1
    return {"ids": ids, "lengths": torch.full((ROWS,), text), "loss_mask": mask,
            "features": torch.randn(ROWS, 128, AUDIO_FRAMES, generator=g),
            "feature_lengths": torch.full((ROWS,), AUDIO_FRAMES)}


def build(config_text, weights, batch, audio_id):
    model = SpeechLM(config_text)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    buffers = {n for n, _ in model.named_buffers()}
    if unexpected or set(missing) - buffers:
        raise SystemExit(f"bench: vtb's parameters and the PyTorch model's differ: missing {sorted(set(missing) - buffers)}, "
                         f"unexpected {sorted(unexpected)}")
    model.freeze_llm_base()
    model.set_batch(batch, audio_id)
    return model


def optimizer(model, lr, weight_decay):
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = lambda n, p: p.dim() < 2 or n.endswith(("pos_bias_u", "pos_bias_v"))  # noqa: E731
    return torch.optim.AdamW([{"params": [p for n, p in trainable if not no_decay(n, p)], "weight_decay": weight_decay},
                              {"params": [p for n, p in trainable if no_decay(n, p)], "weight_decay": 0.0}], lr=lr)


def worker(a):
    """One PyTorch run: `steps` steps on this rank's rows of the batch; rank 0 writes the step times."""
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    torch.set_num_threads(a.threads)
    if ranks > 1:
        dist.init_process_group("gloo")
    cfg = open(a.config).read()
    batch = read_safetensors(a.batch)
    tokens = int(batch["loss_mask"].sum())
    lo, hi = rank * ROWS // ranks, (rank + 1) * ROWS // ranks
    mine = {k: v[lo:hi] for k, v in batch.items()}  # one audio segment per row, so features slice as rows
    model = build(cfg, read_safetensors(a.weights), mine, a.audio_id)
    model.train()
    step_model = model
    if ranks > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(model)
    if a.compile:
        step_model = torch.compile(step_model)
    opt = optimizer(model, 1e-4, 0.01)
    params = [p for p in model.parameters() if p.requires_grad]
    times = []
    for _ in range(a.steps):
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss_sum = step_model(mine["ids"], mine["features"], mine["feature_lengths"])
        # vtb's loss: Σ CE over the job ÷ the job's answer tokens; DDP averages, so scale by the ranks.
        (loss_sum * (ranks / tokens)).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    if rank == 0:
        json.dump({"step_s": times}, open(a.out, "w"))
    if ranks > 1:
        dist.destroy_process_group()


def vtb_command(vtb, config, run_dir, ranks, threads, steps, precision, batch, extra=()):
    mpirun = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"]
    return mpirun + [vtb, "train", "--config", config, "--run.dir", run_dir, f"--train.max_steps={steps}",
                     "--ckpt.every_steps=0", "--log.level=warn", f"--run.threads={threads}",
                     f"--run.precision={precision}", f"--train.fixed_batch={batch}", *extra]


def torch_command(work, ranks, threads, steps, precision, compiled, out, audio_id):
    py = [sys.executable]
    if ranks > 1:
        py += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    return py + [os.path.abspath(__file__), "worker", "--config", f"{work}/config.ini", "--batch", f"{work}/batch.safetensors",
                 "--weights", f"{work}/check/initial_parameters.safetensors", "--steps", str(steps), "--threads",
                 str(threads), "--precision", precision, "--compile", str(int(compiled)), "--out", out,
                 "--audio-id", str(audio_id)]


def run_quiet(cmd, log, env=None):
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if r.returncode != 0:
        sys.stderr.write(open(log).read()[-4000:])
        raise SystemExit(f"bench: {' '.join(cmd[:6])} ... failed ({r.returncode}); log {log}")


def check(a, work, audio_id):
    """vtb's step-1 loss and the PyTorch model's on the same weights and batch (dropout 0, fp32), on 1 rank and
    on 2 (each rank's rows a forward of their own: BatchNorm sees that rank's batch)."""
    no_dropout = ["--encoder.dropout=0", "--adapter.dropout=0"]
    cfg = subprocess.run([a.vtb, "config", "--config", a.config, *no_dropout], capture_output=True, text=True,
                         check=True).stdout
    batch = read_safetensors(f"{work}/batch.safetensors")
    tokens = batch["loss_mask"].sum().item()
    torch.set_num_threads(os.cpu_count())
    for ranks in (2, 1):  # 1 last: its initial weights are the ones the timing runs start from
        run_quiet(vtb_command(a.vtb, a.config, f"{work}/check", ranks, 1, 1, "fp32", f"{work}/batch.safetensors",
                              no_dropout), f"{work}/check.log")
        vtb_loss = json.loads(open(f"{work}/check/metrics.jsonl").readline())["loss"]
        weights = read_safetensors(f"{work}/check/initial_parameters.safetensors")
        loss_sum, total, trainable = 0.0, 0, 0
        for r in range(ranks):
            lo, hi = r * ROWS // ranks, (r + 1) * ROWS // ranks
            mine = {k: v[lo:hi] for k, v in batch.items()}
            model = build(cfg, weights, mine, audio_id).train()
            with torch.no_grad():
                loss_sum += model(mine["ids"], mine["features"], mine["feature_lengths"]).item()
            total = sum(p.numel() for p in model.parameters())
            trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        loss = loss_sum / tokens
        vtb_total = sum(t.numel() for t in weights.values())
        rel = abs(loss - vtb_loss) / abs(vtb_loss)
        print(f"check, {ranks} rank(s): parameters vtb {vtb_total:,}, PyTorch {total:,} ({trainable:,} trainable); "
              f"step-1 loss vtb {vtb_loss:.6f}, PyTorch {loss:.6f} (relative difference {rel:.1e}, limit 1e-5)")
        if total != vtb_total or rel > 1e-5:
            raise SystemExit("FAIL: the PyTorch model does not match vtb's; not timing")
        if ranks > 1:
            shutil.rmtree(f"{work}/check")
    print("PASS")


def median_steps(values):
    v = values[WARMUP:]
    return statistics.median(v), min(v), max(v)


def prepare(a):
    """A work folder with the resolved config, the fixed batch, and the checked initial weights."""
    work = tempfile.mkdtemp(prefix="vtb_vs_pytorch_")
    cfg = subprocess.run([a.vtb, "config", "--config", a.config], capture_output=True, text=True, check=True).stdout
    open(f"{work}/config.ini", "w").write(cfg)
    c = read_config(cfg)
    audio_id = tokenizer_audio_id(c["data"].get("tokenizer"))
    safetensors.torch.save_file(make_batch(audio_id, c["llm"].getint("vocab")), f"{work}/batch.safetensors")
    check(a, work, audio_id)
    return work, audio_id


def run(a):
    work, audio_id = prepare(a)

    cores = os.cpu_count()
    bf16 = has_bf16()
    layouts = [(1, cores), (cores, 1)]
    precisions = ["fp32"] + (["bf16"] if bf16 else [])
    results = {}  # (impl, ranks, threads, precision) -> [per-round (median, min, max)]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    for r in range(a.rounds):
        for ranks, threads in layouts:
            for prec in precisions:
                for impl in ("vtb", "eager", "compile"):
                    key = (impl, ranks, threads, prec)
                    tag = f"{impl}-{ranks}x{threads}-{prec}-{r}"
                    if impl == "vtb":
                        run_quiet(vtb_command(a.vtb, a.config, f"{work}/{tag}", ranks, threads, a.steps, prec,
                                              f"{work}/batch.safetensors"), f"{work}/{tag}.log", env)
                        steps = [json.loads(l)["step_s"] for l in open(f"{work}/{tag}/metrics.jsonl")]
                    else:
                        out = f"{work}/{tag}.json"
                        run_quiet(torch_command(work, ranks, threads, a.steps, prec, impl == "compile", out, audio_id),
                                  f"{work}/{tag}.log", dict(env, OMP_NUM_THREADS=str(threads)))
                        steps = json.load(open(out))["step_s"]
                    results.setdefault(key, []).append(median_steps(steps))
                    print(f"round {r + 1}: {tag}: median {results[key][-1][0]:.3f} s/step", file=sys.stderr)
    table(results, layouts, precisions, a)
    shutil.rmtree(work)  # kept when something failed, for its logs


def table(results, layouts, precisions, a):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = set(next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), []))
    print(f"CPU: {cpu}, {os.cpu_count()} cores; ISA: {' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags)}")
    print(f"matmul peaks (2048², one thread): fp32 {matmul_gflops(torch.float32):.0f} GFLOP/s, "
          f"bf16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s; torch {torch.__version__}")
    print(f"global batch {ROWS} × 2.0 s audio, {POSITIONS} LLM positions per example; {a.steps} steps per run, "
          f"first {WARMUP} not counted; {a.rounds} rounds (vtb, eager, compile in turn); s/step: median of rounds' "
          f"medians [min–max over every counted step]")
    print("| layout (ranks × threads) | precision | vtb | eager PyTorch | torch.compile | vtb ÷ eager | vtb ÷ compile |")
    print("|---|---|---|---|---|---|---|")
    for ranks, threads in layouts:
        for prec in precisions:
            cell = {}
            for impl in ("vtb", "eager", "compile"):
                rs = results[(impl, ranks, threads, prec)]
                cell[impl] = (statistics.median(r[0] for r in rs), min(r[1] for r in rs), max(r[2] for r in rs))
            fmt = lambda m: f"{m[0]:.3f} [{m[1]:.3f}–{m[2]:.3f}]"  # noqa: E731
            print(f"| {ranks} × {threads} | {prec} | {fmt(cell['vtb'])} | {fmt(cell['eager'])} | {fmt(cell['compile'])} | "
                  f"{cell['eager'][0] / cell['vtb'][0]:.2f} | {cell['compile'][0] / cell['vtb'][0]:.2f} |")
    for prec in precisions:
        one = statistics.median(r[0] for r in results[("vtb", 1, os.cpu_count(), prec)])
        many = statistics.median(r[0] for r in results[("vtb", os.cpu_count(), 1, prec)])
        print(f"vtb {prec}: {os.cpu_count()} ranks × 1 thread vs 1 rank × {os.cpu_count()} threads on the same cores: "
              f"{one / many:.2f}× the throughput")


def matmul_gflops(dtype, n=2048):
    torch.set_num_threads(1)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def has_bf16():
    flags = next((l.split(":", 1)[1].split() for l in open("/proc/cpuinfo") if l.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def tokenizer_audio_id(path):
    return sentencepiece.SentencePieceProcessor(model_file=path).piece_to_id("<audio>")


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    c = sub.add_parser("check")
    for q in (r, c):
        q.add_argument("vtb")
        q.add_argument("config")
    r.add_argument("steps", type=int)
    r.add_argument("rounds", type=int)
    w = sub.add_parser("worker")
    for name in ("config", "batch", "weights", "precision", "out"):
        w.add_argument(f"--{name}", required=True)
    for name in ("steps", "threads", "compile", "audio-id"):
        w.add_argument(f"--{name}", type=int, required=True)
    a = p.parse_args()
    if a.cmd == "check":
        shutil.rmtree(prepare(a)[0])
    else:
        run(a) if a.cmd == "run" else worker(a)


if __name__ == "__main__":
    main()
