#!/usr/bin/env python3
"""A sweep's table and picture (scripts/experiments.sh), with the quickstart report's columns.

    python3 scripts/sweep_report.py runs/experiments rank

Reads OUT/<sweep>/<value>/seed<k>/eval/<task>/metrics.json (written by `vtb eval`); writes OUT/<sweep>.md
(each cell: the mean over seeds, and min–max when there are several) and OUT/<sweep>.png (each metric against
the swept value, bars from min to max over seeds), and prints the table.
"""
import json
import pathlib
import statistics
import sys

from report import COLUMNS

LABELS = {"rank": "LoRA rank", "mix": "text share of the mix", "tts": "synthesizers of the training speech"}


def order(name: str):
    """Numbers by value; names (the tts sweep's engine lists) by how many engines, then alphabetically."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, name.count(",") + name.count("+"), name)


def results(out: pathlib.Path, sweep: str):
    """{value: {column index: [metric per seed]}}, values in ascending order."""
    found = {}
    for folder in sorted((out / sweep).iterdir(), key=lambda p: order(p.name)) if (out / sweep).is_dir() else []:
        cells = found.setdefault(folder.name, {})
        for seed in sorted(folder.glob("seed*")):
            for i, (task, _, key, scale, _) in enumerate(COLUMNS):
                path = seed / "eval" / task / "metrics.json"
                if path.exists() and key in (m := json.loads(path.read_text())):
                    cells.setdefault(i, []).append(m[key] * scale)
    return found


def table(sweep: str, found) -> str:
    """Columns no point has a result for (test splits made after the sweep ran) are left out."""
    seeds = max((len(v) for cells in found.values() for v in cells.values()), default=0)
    shown = [i for i in range(len(COLUMNS)) if any(i in cells for cells in found.values())]
    lines = [f"| {LABELS[sweep]} | " + " | ".join(COLUMNS[i][1] for i in shown) + " |", "|---" * (len(shown) + 1) + "|"]
    for value, cells in found.items():
        row = []
        for i in shown:
            column = COLUMNS[i]
            xs, fmt = cells.get(i, []), column[4]
            if not xs:
                row.append("–")
            elif len(xs) == 1:
                row.append(fmt.format(xs[0]))
            else:
                row.append(f"{fmt.format(statistics.mean(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})")
        lines.append(f"| {value} | " + " | ".join(row) + " |")
    return "\n".join(lines) + f"\n\n{seeds} seed(s) per point" + (": mean (min–max)" if seeds > 1 else "")


def plot(out: pathlib.Path, sweep: str, found):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("sweep_report: python3-matplotlib is missing; no picture", file=sys.stderr)
        return None
    shown = [i for i in range(len(COLUMNS)) if any(i in cells for cells in found.values())]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.2), squeeze=False)
    for ax, i in zip(axes[0], shown):
        xs, means, low, high = [], [], [], []
        for position, (value, cells) in enumerate(found.items()):
            if i in cells:
                ys = cells[i]
                xs.append(float(value) if order(value)[0] == 0 else position)
                means.append(statistics.mean(ys))
                low.append(statistics.mean(ys) - min(ys))
                high.append(max(ys) - statistics.mean(ys))
        ax.errorbar(xs, means, yerr=[low, high], marker="o", capsize=3)
        if sweep == "rank":
            ax.set_xscale("log", base=2)
        if sweep == "tts":
            ax.set_xticks(range(len(found)), [v.replace(",", "\n") for v in found], fontsize=7)
        ax.set_xlabel(LABELS[sweep])
        ax.set_title(COLUMNS[i][1], fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / f"{sweep}.png"
    fig.savefig(path, dpi=100)
    return path


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[2] not in LABELS:
        print(__doc__, file=sys.stderr)
        return 2
    out, sweep = pathlib.Path(sys.argv[1]), sys.argv[2]
    found = results(out, sweep)
    if not found:
        print(f"sweep_report: no points under {out / sweep}", file=sys.stderr)
        return 1
    text = table(sweep, found)
    picture = plot(out, sweep, found)
    (out / f"{sweep}.md").write_text(text + "\n" + (f"\n![{sweep}]({picture.name})\n" if picture else ""))
    print(f"== {LABELS[sweep]} ({out / sweep}.md)\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
