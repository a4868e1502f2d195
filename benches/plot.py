#!/usr/bin/env python3
"""Turns pipeline benchmark summaries (target/pipeline/summary*.json) into a PNG chart:
messages per broker-CPU-second and end-to-end latency, by shape, rate and payload size.

    python3 -m venv target/plot-venv && target/plot-venv/bin/pip install matplotlib
    target/plot-venv/bin/python benches/plot.py [summary.json ...] [-o docs/pipeline.png]
"""
import argparse
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(paths):
    runs = []
    reference = 14600.0
    for path in paths:
        doc = json.loads(pathlib.Path(path).read_text())
        reference = doc.get("reference_msgs_per_core", reference)
        for run in doc["runs"]:
            run["pacing_tick_ms"] = doc.get("pacing_tick_ms", 5)
            runs.append(run)
    return runs, reference


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("summaries", nargs="*", default=["target/pipeline/summary.json"])
    parser.add_argument("-o", "--output", default="docs/pipeline.png")
    args = parser.parse_args()
    runs, reference = load(args.summaries)
    if not runs:
        sys.exit("no runs in the summaries")
    ticks = {r["pacing_tick_ms"] for r in runs}
    labels = [
        f"{r['shape']}\n{r['payload_bytes']} B" + (f"\ntick {r['pacing_tick_ms']} ms" if len(ticks) > 1 else "")
        for r in runs
    ]
    per_core = [r["msgs_per_broker_cpu_s"] for r in runs]
    e2e_p50 = [r["e2e_p50_ms"] for r in runs]
    e2e_p99 = [r["e2e_p99_ms"] for r in runs]
    produce_p99 = [r["produce_p99_ms"] for r in runs]

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 1.3 * len(runs)), 9))
    x = range(len(runs))
    top.bar(x, per_core, color="#2b7bb9")
    top.axhline(reference, color="#c0392b", linestyle="--", label=f"reference {reference:,.0f} msg/s per core")
    top.axhline(10 * reference, color="#27ae60", linestyle=":", label=f"10x reference {10 * reference:,.0f}")
    for i, v in enumerate(per_core):
        top.text(i, v, f"{v / 1000:.0f}k\n({v / reference:.1f}x)", ha="center", va="bottom", fontsize=8)
    top.set_yscale("log")
    top.set_ylabel("messages per broker-CPU-second (log scale)")
    top.set_xticks(list(x), labels, fontsize=8)
    top.set_title(f"Rivulet pipeline, {runs[0]['brokers']} brokers, RF=3, acks=all (loopback, clients on the same cores)")
    top.legend(fontsize=8)

    width = 0.27
    bottom.bar([i - width for i in x], e2e_p50, width, label="end-to-end p50", color="#7fb3d5")
    bottom.bar(list(x), e2e_p99, width, label="end-to-end p99", color="#1f618d")
    bottom.bar([i + width for i in x], produce_p99, width, label="produce p99", color="#e59866")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms, log scale)")
    bottom.set_xticks(list(x), labels, fontsize=8)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    out = pathlib.Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
