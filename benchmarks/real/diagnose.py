"""What the adversarial term did in an experiment folder: per seed and adversarial model, the
validation L_s of the baseline it started from and its own best, the Wasserstein estimates and
gradient penalties at the start and the end of training, and the size of every data pool.

    python benchmarks/real/diagnose.py EXPERIMENT_DIR [--png diagnosis.png]

Reads `runs/seed<N>/<model>/history.csv` and `shards/manifest.json`; draws validation L_s and the
Wasserstein estimates per epoch for every run (one panel each).
"""

import argparse
import contextlib
import csv
import json
import os


@contextlib.contextmanager
def png_figure(path, *grid, **options):
    """The axes of a matplotlib figure (`plt.subplots(*grid, **options)`, drawn without a
    display), laid out and written to `path` as a PNG once the block has drawn on them. Here
    because paired_curve.py draws through it as well."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(*grid, **options)
    yield axes
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"\nwrote {path}")


def history(run_dir):
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [
            {k: float(v) for k, v in row.items() if v not in ("", "NA")}
            for row in csv.DictReader(f)
        ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment")
    p.add_argument("--png")
    args = p.parse_args(argv)
    runs_root = os.path.join(args.experiment, "runs")
    manifest = os.path.join(args.experiment, "shards", "manifest.json")
    if os.path.isfile(manifest):
        with open(manifest) as f:
            roles = json.load(f)["roles"]
        print("| pool | tracks | minutes | patches |\n|---|---|---|---|")
        for role, info in roles.items():
            print(
                f"| {role} | {len(info['tracks'])} | {info['seconds'] / 60:.1f} | "
                f"{info['examples']} |"
            )
        print()
    seeds = sorted(d for d in os.listdir(runs_root) if d.startswith("seed")) or [""]
    rows, curves = [], {}
    for seed in seeds:
        base = history(os.path.join(runs_root, seed, "baseline"))
        base_best = min(r["val_supervised_loss"] for r in base)
        for model in sorted(os.listdir(os.path.join(runs_root, seed))):
            if model == "baseline":
                continue
            run = history(os.path.join(runs_root, seed, model))
            if not run:  # still in its first epoch
                continue
            curves[f"{seed} {model}"] = run
            w_keys = sorted(k for k in run[0] if k.startswith("wasserstein_"))
            gp_keys = sorted(k for k in run[0] if k.startswith("gradient_penalty_"))
            best = min(r["val_supervised_loss"] for r in run)
            rows.append(
                f"| {seed} | {model} | {base_best:.4f} | {best:.4f} | "
                f"{100 * (best - base_best) / base_best:+.1f}% | "
                + "; ".join(f"{k[12:]} {run[0][k]:.3f} -> {run[-1][k]:.3f}" for k in w_keys)
                + " | "
                + "; ".join(f"{k[17:]} {run[-1][k]:.3f}" for k in gp_keys)
                + " | "
                + (
                    f"{run[-1]['adversarial_loss']:.3f} (x alpha)"
                    if "adversarial_loss" in run[-1]
                    else "-"
                )
                + " |"
            )
    print(
        "| seed | model | baseline best val L_s | its best val L_s | change | Wasserstein, first "
        "-> last epoch | "
        "gradient penalty, last epoch | L_u, last epoch |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.png:
        with png_figure(args.png, 1, 2, figsize=(11, 3.8)) as axes:
            for label, run in curves.items():
                epochs = range(1, len(run) + 1)
                axes[0].plot(
                    epochs, [r["val_supervised_loss"] for r in run], marker="o", label=label
                )
                for key in (k for k in run[0] if k.startswith("wasserstein_")):
                    axes[1].plot(
                        epochs, [r[key] for r in run], marker=".", label=f"{label} {key[12:]}"
                    )
            axes[0].set_title("validation L_s after warm start")
            axes[1].set_title("Wasserstein estimate per critic")
            for ax in axes:
                ax.set_xlabel("epoch")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=6)


if __name__ == "__main__":
    main()
