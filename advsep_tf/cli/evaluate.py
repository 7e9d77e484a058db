"""advsep-tf-evaluate: BSS Eval (museval v4) of estimates against references, both <track>/<source>.wav."""

from __future__ import annotations

import sys

from advsep_tf.cli import common


def main(argv=None) -> None:
    p = common.parser("advsep-tf-evaluate", __doc__.splitlines()[0])
    p.epilog = "example: advsep-tf-evaluate --estimates separated/ --references corpus/musdb18hq/test --out results/"
    p.add_argument("--estimates", required=True, metavar="EST_DIR")
    p.add_argument("--references", required=True, metavar="REF_DIR")
    p.add_argument("--out", required=True, metavar="RESULTS_DIR")
    p.add_argument("--sources", metavar="SOURCE,...", help="sources to score (default: all in both folders)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from advsep_tf.evaluate import evaluate_folders, format_table

    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    bars = []

    def progress(done, total):
        # Created on the first finished track, so that an input error is not printed after a bar.
        if not bars:
            bars.append(tqdm(total=total, desc="evaluate", unit="track", disable=args.no_progress, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    try:
        result = evaluate_folders(args.estimates, args.references, out_dir=args.out, sources=sources, progress=progress)
    finally:
        for bar in bars:
            bar.close()
    print(format_table(result, title=f"BSS Eval v4 of {args.estimates} ({len(result.tracks)} tracks), mean / median dB"))
    print(f"Wrote {args.out}/results.json and {args.out}/results.csv")


def cli() -> int:
    return common.run(main)


if __name__ == "__main__":
    sys.exit(cli())
