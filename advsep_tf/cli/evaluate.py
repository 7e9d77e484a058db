"""advsep-tf-evaluate: BSS Eval (museval v4) of estimates against references, both laid out as
<track>/<source>.wav, beside the mixture as estimate (and, on request, the ideal-ratio-mask
oracle), or a side-by-side comparison of finished results folders."""

from __future__ import annotations

import os
import sys

from advsep_tf.cli import common, options

DESCRIPTION = (
    "BSS Eval (museval v4) of separated stems against references, both laid out as "
    "<track>/<source>.wav, printed as one table with the mixture as estimate (the score of not "
    "separating) and, with --oracle, the ideal ratio mask; or a comparison of finished results "
    "folders (--compare). Writes results.json, results.csv, report.html and a box plot."
)
EPILOG = """examples:
  advsep-tf-evaluate --estimates separated/ --references corpus/musdb18hq/test --out results/
  advsep-tf-evaluate --estimates separated/ --references refs/ --out results/ --oracle demo
  advsep-tf-evaluate --compare results/baseline results/va --out comparison/

A SAR of ∞ is the mixture as estimate's: it is the sum of the references, so BSS Eval's
artefact term is zero (museval returns about 169 dB there, a number of no meaning)."""


def main(argv=None) -> None:
    p = common.parser("advsep-tf-evaluate", DESCRIPTION, EPILOG)
    options.add(p, "--estimates", "--references", "--out", "--sources")
    options.add(p, "--oracle", "--oracle-rate", "--keep-oracle-audio")
    options.add(p, "--compare", "--excerpt-seconds", "--overwrite", "--no-progress")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)
    if args.compare and (args.estimates or args.references):
        p.error("--compare takes results folders; do not combine it with --estimates/--references")
    if not args.compare and not (args.estimates and args.references):
        p.error("give --estimates and --references (or --compare RESULTS_DIR ...)")
    if (args.keep_oracle_audio or args.oracle_rate != "input") and not args.oracle:
        p.error("--keep-oracle-audio and --oracle-rate go with --oracle")
    if args.excerpt_seconds is not None and not args.excerpt_seconds > 0:
        p.error(f"--excerpt-seconds must be positive, got {args.excerpt_seconds}")
    for option, folder in (("--estimates", args.estimates), ("--references", args.references)):
        if folder and _inside(args.out, folder):
            p.error(
                f"--out {args.out} is inside {option} {folder}: its files would be read as tracks"
            )

    from advsep_tf.evaluate import (
        MIXTURE,
        ORACLE,
        RESULTS_JSON,
        evaluate_all,
        folder_bytes,
        format_table,
        load_result,
        plot_boxplots,
    )
    from advsep_tf.files import write_atomically
    from advsep_tf.report import DEFAULT_EXCERPT_SECONDS, format_size, write_report

    report_options = dict(
        figures=[(os.path.join(args.out, "boxplot_sdr.png"), BOXPLOT_CAPTION)],
        command=common.command_line("advsep-tf-evaluate", argv),
        excerpt_seconds=args.excerpt_seconds or DEFAULT_EXCERPT_SECONDS,
        progress=not args.no_progress,
    )
    _check_outputs(args, RESULTS_JSON)
    os.makedirs(args.out, exist_ok=True)

    def finish(results, title, config=None):
        """One table printed (and in comparison.md), the box plot and the report."""
        models = {name: result for name, result in results.items() if name != MIXTURE}
        table = format_table(results, title=title)
        print(table)
        if len(models) > 1:
            write_atomically(os.path.join(args.out, "comparison.md"), table + "\n")
        plot_boxplots(models, os.path.join(args.out, "boxplot_sdr.png"))
        print(
            f"Wrote {args.out}/results.json, results.csv and boxplot_sdr.png"
            if not args.compare
            else f"Wrote {args.out}/boxplot_sdr.png"
        )
        write_report(
            args.out,
            models,
            mixture=results.get(MIXTURE),
            config=config,
            title=title,
            **report_options,
        )

    if args.compare:
        results = {
            os.path.basename(os.path.normpath(d)): load_result(os.path.join(d, RESULTS_JSON))
            for d in args.compare
        }
        shared = _shared_references(results)
        if shared:
            results.update(
                evaluate_all(
                    shared[0], out_dir=args.out, sources=shared[1], progress=not args.no_progress
                )
            )
        finish(results, f"Comparison of {', '.join(n for n in results if n != MIXTURE)}")
        return

    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    name = os.path.basename(os.path.normpath(args.estimates)) or "estimates"
    if name in (ORACLE, MIXTURE):
        name = f"{name} (estimates)"
    config = None
    if args.oracle:
        from advsep_tf.config import load_config

        config = load_config(args.oracle)
    oracle_dir = os.path.join(args.out, "oracle_estimates")
    title = f"BSS Eval v4 of {args.estimates}"

    def with_audio(results):
        if ORACLE in results:
            size = format_size(folder_bytes(results[ORACLE].estimates_dir))
            print(
                f"Oracle audio: {oracle_dir} ({size})"
                if args.keep_oracle_audio
                else f"Oracle audio: {size}, removed once the report has its excerpts "
                f"(--keep-oracle-audio keeps it in {oracle_dir})"
            )
        finish(
            results,
            title,
            {"oracle": config.to_dict(), "oracle_rate": args.oracle_rate} if config else None,
        )

    evaluate_all(
        args.references,
        {name: args.estimates},
        args.out,
        oracle=config,
        oracle_rate=args.oracle_rate,
        oracle_audio=oracle_dir if args.keep_oracle_audio else None,
        sources=sources,
        result_dirs={name: args.out},
        progress=not args.no_progress,
        with_audio=with_audio,
    )


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_outputs(args, results_json: str) -> None:
    """Before any work: the files this run writes replace nothing but an earlier evaluation's
    results, and those only with --overwrite."""
    from advsep_tf.errors import AdvsepError
    from advsep_tf.files import check_output_files, check_writable

    check_writable(args.out)
    if os.path.lexists(args.out) and not os.path.isdir(args.out):
        raise AdvsepError(f"{args.out}: exists and is a file; --out must be a folder")
    names = ["boxplot_sdr.png", "report.html", os.path.join("mixture", results_json)]
    if args.oracle or len(args.compare or []) > 1:
        names.append("comparison.md")
    if not args.compare:
        names += [results_json, "results.csv"]
    if args.oracle:
        names += [os.path.join("oracle", results_json), os.path.join("oracle", "results.csv")]
        oracle_dir = os.path.join(args.out, "oracle_estimates")
        if (
            args.keep_oracle_audio
            and os.path.isdir(oracle_dir)
            and os.listdir(oracle_dir)
            and not args.overwrite
        ):
            raise AdvsepError(
                f"{oracle_dir}: exists; pass --overwrite to replace the oracle estimates of an "
                f"earlier "
                "evaluation, or choose another --out"
            )
    inputs = [
        folder for folder in (args.estimates, args.references, *(args.compare or [])) if folder
    ]
    paths = [os.path.join(args.out, name) for name in names]
    check_output_files(
        paths,
        args.overwrite,
        "the results of an earlier evaluation",
        {folder: "an input folder" for folder in inputs},
    )
    # --overwrite replaces an earlier evaluation's files, not a user's own results.json or
    # report.html that happen to share their names: the folder must hold an evaluation's result.
    existing = [p for p in [*paths, os.path.join(args.out, "report_files")] if os.path.lexists(p)]
    if existing and not _is_evaluation_output(args.out, results_json):
        raise AdvsepError(
            f"{existing[0]}: exists, and {args.out} holds no results of an earlier "
            "evaluation; not replaced, even with --overwrite: choose another --out"
        )
    for path in existing:
        if path.endswith(results_json) and not _is_result(path):
            raise AdvsepError(
                f"{path}: exists and is not an evaluation's results; not replaced, "
                "even with --overwrite: choose another --out"
            )


def _is_evaluation_output(folder: str, results_json: str) -> bool:
    """Whether `folder` holds a results.json that an evaluation wrote (its own or its mixture's)."""
    return any(
        _is_result(os.path.join(folder, *parts, results_json)) for parts in ((), ("mixture",))
    )


def _is_result(path: str) -> bool:
    from advsep_tf.errors import AdvsepError
    from advsep_tf.evaluate import load_result

    try:
        load_result(path)
        return True
    except AdvsepError:
        return False


def _shared_references(results):
    """(references folder, sources) of compared results where all have the same and the folder is
    still there, so that the mixture as estimate can be scored beside them; None otherwise."""
    settings = {
        (os.path.abspath(r.references_dir), tuple(r.sources))
        for r in results.values()
        if r.references_dir
    }
    if len(settings) != 1:
        return None
    references, sources = settings.pop()
    return (references, list(sources)) if os.path.isdir(references) else None


BOXPLOT_CAPTION = "SDR per track: a panel per source, a box per model; triangles are means."

cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
