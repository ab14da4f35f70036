"""The event-camera evaluation's report: acceptance check, printed table, PNG plot, JSON file.

Everything here reads the results dict that `event_camera.run_eval` returns (its layout is the
JSON schema in `sim_envs/event_camera/README.md`), so a saved JSON can be re-reported without
rerunning the loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def acceptance(
    res: Mapping[str, Any],
    *,
    controller: str = "fast_slow",
    baseline: str = "default",
    min_in_band: float = 0.9,
) -> dict[str, Any] | None:
    """The issue's acceptance on pooled figures, or None when either controller was not run.

    In band: the controller's share of control windows inside the common band, over every
    window of every condition and repeat, must reach `min_in_band` and exceed the baseline's
    (per-condition shares are reported beside it). Recall: its pooled Recall@1 must be at least
    the baseline's in every condition, compared as counts of correct queries.
    """
    results = res["results"]
    if controller not in results or baseline not in results:
        return None
    conds = list(res["conditions"])
    in_band = res["summary"][controller]["in_common_band"]
    base_in_band = res["summary"][baseline]["in_common_band"]
    recall = {}
    for c in conds:
        ours, theirs = results[controller][c], results[baseline][c]
        same_queries = ours["n_queries"] == theirs["n_queries"] and "correct@1" in ours
        met = (
            ours["correct@1"] >= theirs["correct@1"]
            if same_queries
            else ours["recall@1"] >= theirs["recall@1"]
        )
        recall[c] = {
            "value": ours["recall@1"],
            "baseline": theirs["recall@1"],
            "correct": ours.get("correct@1"),
            "baseline_correct": theirs.get("correct@1"),
            "n_queries": ours["n_queries"],
            "met": bool(met),
        }
    band_met = bool(in_band >= min_in_band and in_band > base_in_band)
    return {
        "controller": controller,
        "baseline": baseline,
        "repeats": res.get("repeats", 1),
        "in_band": {
            "value": in_band,
            "baseline": base_in_band,
            "threshold": min_in_band,
            "by_condition": {c: results[controller][c]["in_common_band"] for c in conds},
            "met": band_met,
        },
        "recall@1": recall,
        "met": band_met and all(r["met"] for r in recall.values()),
    }


def format_acceptance(acc: Mapping[str, Any] | None) -> list[str]:
    """The acceptance as printed lines ("MET"/"NOT MET" with the figures behind it)."""
    if acc is None:
        return ["acceptance: not checked (needs the fast_slow and default controllers)"]
    band = acc["in_band"]
    by_cond = ", ".join(f"{c} {v:.2f}" for c, v in band["by_condition"].items())
    lines = [
        f"acceptance ({acc['controller']} vs {acc['baseline']}, pooled over "
        f"{acc['repeats']} repeat(s) per condition):",
        f"  in common band {band['value']:.3f} (>= {band['threshold']:.2f} and > "
        f"{acc['baseline']} {band['baseline']:.3f}): {'met' if band['met'] else 'NOT met'}"
        f"  [{by_cond}]",
    ]
    for c, r in acc["recall@1"].items():
        counts = (
            f" ({r['correct']} vs {r['baseline_correct']} of {r['n_queries']})"
            if r["correct"] is not None
            else ""
        )
        lines.append(
            f"  Recall@1 {c}: {r['value']:.3f} vs {r['baseline']:.3f}{counts}: "
            f"{'met' if r['met'] else 'NOT met'}"
        )
    lines.append(f"  overall: {'MET' if acc['met'] else 'NOT MET'}")
    return lines


def format_table(res: Mapping[str, Any]) -> str:
    """A plain-text table: one row per controller, columns per condition."""
    conds = res["conditions"]
    lines = []
    head = f"{'controller':<11s} " + " ".join(f"{c + ' R@1/R@5':>17s}" for c in conds)
    head += f" {'in-own':>7s} {'in-common':>9s}"
    lines.append(head)
    lines.append("-" * len(head))
    for kind in res["controllers"]:
        row = f"{kind:<11s} "
        for c in conds:
            e = res["results"][kind][c]
            row += f"{e['recall@1']:>8.3f}/{e.get('recall@5', math.nan):<8.3f}"
        s = res["summary"][kind]
        row += f" {s['in_own_band']:>7.3f} {s['in_common_band']:>9.3f}"
        lines.append(row)
    lines.append("")
    lines.append("in-band fraction per condition (own band / common band):")
    for kind in res["controllers"]:
        parts = [
            f"{c}: {res['results'][kind][c]['in_own_band']:.2f}/"
            f"{res['results'][kind][c]['in_common_band']:.2f}"
            for c in conds
        ]
        lines.append(f"  {kind:<11s} " + "  ".join(parts))
    if res.get("repeats", 1) > 1:
        lines.append("")
        lines.append("Recall@1 per repeat (queries correct of each traversal):")
        for kind in res["controllers"]:
            parts = [
                f"{c}: " + " ".join(str(e["correct@1"]) for e in res["results"][kind][c]["repeats"])
                for c in conds
            ]
            lines.append(f"  {kind:<11s} " + "  ".join(parts))
    lines.append("")
    lines.extend(format_acceptance(res.get("acceptance")))
    return "\n".join(lines)


def plot_results(res: Mapping[str, Any], path: str | Path) -> Path:
    """Writes a PNG: rate traces under changing light, Recall@1 bars, in-band bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = res["conditions"]
    kinds = res["controllers"]
    trace_cond = "changing" if "changing" in conds else conds[-1]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    ax = axes[0]
    lo, hi = res["bands"]["common"]
    ax.axhspan(lo, hi, color="0.9", label="common band")
    for kind in kinds:
        tr = res["traces"][kind][trace_cond][0]  # the first repeat
        ax.plot(tr["t_s"], tr["rate_hz"], label=kind, lw=1.2)
    ax.set_yscale("log")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("events/s")
    ax.set_title(f"event rate, '{trace_cond}' lighting (repeat 1)")
    ax.legend(fontsize=8)
    width = 0.8 / max(1, len(kinds))
    x = np.arange(len(conds))
    for i, kind in enumerate(kinds):
        axes[1].bar(
            x + i * width, [res["results"][kind][c]["recall@1"] for c in conds], width, label=kind
        )
        axes[2].bar(
            x + i * width,
            [res["results"][kind][c]["in_common_band"] for c in conds],
            width,
            label=kind,
        )
    for ax, title in ((axes[1], "Recall@1"), (axes[2], "fraction of windows in common band")):
        ax.set_xticks(x + 0.4 - width / 2, conds)
        ax.set_ylim(0, 1)
        ax.set_title(title)
    fig.suptitle(f"event-camera bias control, route '{res['route']}'")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_results(res: Mapping[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Writes the JSON results and the PNG plot beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    png = plot_results(res, out.with_suffix(".png"))
    return out, png
