"""The paper's argument as a curve: the gain of the adversarial model over the baseline as the
paired data shrinks (1, 3, 6 paired MIR-1K singers; the unpaired pools fixed), beside the
continued-baseline control. Reads experiment folders written by

    advsep-tf-experiment --config real-small --dataset mir1k=... --dataset musdb18=... \
        --split benchmarks/real/split_paired{N}.yaml --test-rate 16000 --seeds 1 \
        --models baseline,VA --warm-start-steps 500 --out exp_paired{N}

    python benchmarks/real/paired_curve.py 1=exp_paired1 3=exp_paired3 6=exp_paired6 --seed 1 --png
    curve.png
"""

import argparse
import json
import os

from diagnose import png_figure


def aggregate(folder: str, model: str, seed: int) -> dict:
    for sub in (os.path.join("results", f"seed{seed}", model), os.path.join("results", model)):
        path = os.path.join(folder, sub, "results.json")
        if os.path.isfile(path):
            with open(path) as f:
                return json.load(f)["aggregate"]
    raise SystemExit(f"{folder}: no results for {model} (seed {seed})")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiments", nargs="+", metavar="SINGERS=FOLDER")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--png")
    args = p.parse_args(argv)
    points = sorted((int(k), v) for k, v in (e.split("=", 1) for e in args.experiments))
    rows, curve = [], {"VA": [], "baseline+": []}
    for singers, folder in points:
        scores = {m: aggregate(folder, m, args.seed) for m in ("baseline", "VA", "baseline+")}
        sdr = {
            m: {s: scores[m][s]["SDR"]["mean"] for s in ("vocals", "accompaniment")} for m in scores
        }
        for m in curve:
            curve[m].append((singers, sdr[m]["vocals"] - sdr["baseline"]["vocals"]))
        rows.append(
            f"| {singers} | {sdr['baseline']['vocals']:.2f} | {sdr['VA']['vocals']:.2f} | "
            f"{sdr['baseline+']['vocals']:.2f} | "
            f"{sdr['VA']['vocals'] - sdr['baseline']['vocals']:+.2f} | "
            f"{sdr['baseline+']['vocals'] - sdr['baseline']['vocals']:+.2f} | "
            f"{sdr['VA']['accompaniment'] - sdr['baseline']['accompaniment']:+.2f} |"
        )
    print(f"Seed {args.seed}; vocals SDR in dB (mean over the test tracks):\n")
    print(
        "| paired singers | baseline | VA | baseline+ | VA - baseline | baseline+ - baseline | "
        "VA - baseline, accompaniment |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.png:
        with png_figure(args.png, figsize=(5.5, 3.6)) as ax:
            for model, values in curve.items():
                ax.plot(
                    [x for x, _ in values],
                    [y for _, y in values],
                    marker="o",
                    label=f"{model} - baseline",
                )
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_xlabel("paired MIR-1K singers (+19 previews)")
            ax.set_ylabel("vocals SDR gain over baseline (dB)")
            ax.set_title(f"Gain as paired data shrinks (seed {args.seed})")
            ax.grid(alpha=0.3)
            ax.legend()


if __name__ == "__main__":
    main()
