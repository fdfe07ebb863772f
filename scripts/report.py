#!/usr/bin/env python3
"""The quickstart's report: a table of the evaluations under RUN/eval and a picture of the loss curves.

    python3 scripts/report.py runs/quickstart

Reads RUN/eval/<model>/<task>/metrics.json (written by `vtb eval`) and RUN/<model>/metrics.jsonl (written
by `vtb train`); writes RUN/report.md and RUN/loss_curves.png, and prints the table.
"""
import collections
import json
import pathlib
import sys

MODELS = [  # folder under eval/ → row label
    ("base", "before SFT: base LLM, pretrained encoder, untrained adapter"),
    ("sft", "joint SFT (speech + text)"),
    ("speech-only", "speech-only SFT (ablation)"),
]
COLUMNS = [  # task → (header, metric key, scale, format)
    ("asr", "ASR WER % (lower is better)", "wer", 100, "{:.1f}"),
    ("asr_unseen_prompt", "ASR WER %, unseen prompts", "wer", 100, "{:.1f}"),
    ("asr_real", "human-speech ASR WER %", "wer", 100, "{:.1f}"),
    ("asr_flite", "ASR WER %, flite voice", "wer", 100, "{:.1f}"),
    ("asr_festival", "ASR WER %, festival voice", "wer", 100, "{:.1f}"),
    ("asr_prose", "ASR WER %, real English text", "wer", 100, "{:.1f}"),
    ("ast", "AST BLEU", "bleu", 1, "{:.1f}"),
    ("ast_unseen_prompt", "AST BLEU, unseen prompts", "bleu", 1, "{:.1f}"),
    ("mixed_multiturn", "multi-turn exact %", "exact_match", 100, "{:.1f}"),
    ("mixed_multiturn", "multi-turn ROUGE-L %", "rouge_l", 100, "{:.1f}"),
    ("text_multiturn", "multi-turn as text, exact %", "exact_match", 100, "{:.1f}"),
    ("sqa", "SQA ROUGE-L %", "rouge_l", 100, "{:.1f}"),
    ("sqa", "SQA exact %", "exact_match", 100, "{:.1f}"),
    ("text", "text exact %", "exact_match", 100, "{:.1f}"),
]


def table(run: pathlib.Path) -> str:
    lines = ["| model | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for folder, label in MODELS:
        if not (run / "eval" / folder).is_dir():
            continue
        cells = []
        for task, _, key, scale, fmt in COLUMNS:
            path = run / "eval" / folder / task / "metrics.json"
            metrics = json.loads(path.read_text()) if path.exists() else {}
            cells.append(fmt.format(metrics[key] * scale) if key in metrics else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(run: pathlib.Path) -> pathlib.Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: python3-matplotlib is missing; no picture", file=sys.stderr)
        return None
    runs = [(f, label) for f, label in MODELS if (run / f / "metrics.jsonl").exists()]
    if not runs:
        return None
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    for ax, (folder, label) in zip(axes[0], runs):
        by_source = collections.defaultdict(list)
        for line in (run / folder / "metrics.jsonl").read_text().splitlines():
            row = json.loads(line)
            if not row.get("skipped"):
                by_source[row["source"]].append((row["step"], row["loss"]))
        for source, points in sorted(by_source.items()):
            steps = [s for s, _ in points]
            window = 15  # a running mean over the source's last steps: one source per step is noisy
            smooth = [sum(l for _, l in points[max(0, i - window + 1): i + 1]) / min(i + 1, window) for i in range(len(points))]
            ax.plot(steps, smooth, label=source)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss per answer token (running mean of 15)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out = run / "loss_curves.png"
    fig.savefig(out, dpi=110)
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = pathlib.Path(sys.argv[1])
    if not (run / "eval").is_dir():
        print(f"report: no evaluations under {run}/eval", file=sys.stderr)
        return 1
    text = table(run)
    picture = plot(run)
    (run / "report.md").write_text(text + "\n" + (f"\n![loss curves]({picture.name})\n" if picture else ""))
    print(text)
    if picture:
        print(f"\nloss curves per source: {picture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
