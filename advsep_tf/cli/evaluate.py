"""advsep-tf-evaluate: BSS Eval (museval v4) of estimates against references, both <track>/<source>.wav;
or a side-by-side comparison of several results folders."""

from __future__ import annotations

import os
import sys

from advsep_tf.cli import common, options


def main(argv=None) -> None:
    p = common.parser(
        "advsep-tf-evaluate", __doc__.splitlines()[0],
        "examples:\n"
        "  advsep-tf-evaluate --estimates separated/ --references corpus/musdb18hq/test --out results/ --oracle demo\n"
        "  advsep-tf-evaluate --compare results/baseline results/va --out comparison/",
    )
    p.add_argument("--estimates", metavar="EST_DIR")
    p.add_argument("--references", metavar="REF_DIR")
    options.add(p, "--out", metavar="RESULTS_DIR")
    p.add_argument("--sources", metavar="SOURCE,...", help="sources to score (default: all in both folders)")
    p.add_argument("--oracle", metavar="PRESET_OR_FILE",
                   help="also score the ideal ratio mask at this config's STFT settings (the upper bound)")
    p.add_argument("--compare", nargs="+", metavar="RESULTS_DIR", help="compare finished results folders instead")
    p.add_argument("--excerpt-seconds", type=options.number(float, 0, low_open=True), metavar="S",
                   help="length of the audio excerpts in report.html (default: 10)")
    options.add(p, "--overwrite", help="replace the results files an earlier evaluation wrote in RESULTS_DIR")
    options.add(p, "--no-progress")
    args = p.parse_args(argv)
    common.quiet_tensorflow(args.verbose)
    if args.compare and (args.estimates or args.references):
        p.error("--compare takes results folders; do not combine it with --estimates/--references")
    if not args.compare and not (args.estimates and args.references):
        p.error("give --estimates and --references (or --compare RESULTS_DIR ...)")
    if args.excerpt_seconds is not None and not args.excerpt_seconds > 0:
        p.error(f"--excerpt-seconds must be positive, got {args.excerpt_seconds}")
    for option, folder in (("--estimates", args.estimates), ("--references", args.references)):
        if folder and _inside(args.out, folder):
            p.error(f"--out {args.out} is inside {option} {folder}: its files would be read as tracks")

    from advsep_tf.evaluate import (
        RESULTS_JSON,
        evaluate_folders,
        evaluate_mixture_as_estimate,
        format_comparison,
        format_table,
        load_result,
        plot_boxplots,
        write_oracle_estimates,
    )
    from advsep_tf.report import DEFAULT_EXCERPT_SECONDS, write_report

    report_options = dict(
        figures=[(os.path.join(args.out, "boxplot_sdr.png"), BOXPLOT_CAPTION)],
        command=common.command_line("advsep-tf-evaluate", argv),
        excerpt_seconds=args.excerpt_seconds or DEFAULT_EXCERPT_SECONDS,
        progress=not args.no_progress,
    )
    _check_outputs(args, RESULTS_JSON)
    os.makedirs(args.out, exist_ok=True)
    if args.compare:
        results = {os.path.basename(os.path.normpath(d)): load_result(os.path.join(d, RESULTS_JSON)) for d in args.compare}
        _write_comparison(results, args.out, format_comparison, plot_boxplots)
        shared = _shared_references(results)
        mixture = shared and _evaluate(evaluate_mixture_as_estimate, None, shared[0], os.path.join(args.out, "mixture"),
                                       shared[1], args.no_progress, "mixture as estimate")
        write_report(args.out, results, mixture=mixture, title=f"Comparison of {', '.join(results)}", **report_options)
        return

    sources = [s.strip() for s in args.sources.split(",")] if args.sources else None
    result = _evaluate(evaluate_folders, args.estimates, args.references, args.out, sources, args.no_progress)
    print(format_table(result, title=f"BSS Eval v4 of {args.estimates} ({len(result.tracks)} tracks), mean / median dB"))
    results = {os.path.basename(os.path.normpath(args.estimates)) or "estimates": result}
    config = None
    if args.oracle:
        from advsep_tf.config import load_config

        config = load_config(args.oracle)
        oracle_dir = os.path.join(args.out, "oracle_estimates")
        write_oracle_estimates(args.references, oracle_dir, config, result.sources)
        results["oracle"] = _evaluate(evaluate_folders, oracle_dir, args.references, os.path.join(args.out, "oracle"),
                                      result.sources, args.no_progress)
    _write_comparison(results, args.out, format_comparison, plot_boxplots)
    mixture = _evaluate(evaluate_mixture_as_estimate, None, args.references, os.path.join(args.out, "mixture"),
                        result.sources, args.no_progress, "mixture as estimate")
    print(f"Wrote {args.out}/results.json, results.csv and boxplot_sdr.png")
    write_report(args.out, results, mixture=mixture, config={"oracle": config.to_dict()} if config else None,
                 title=f"BSS Eval of {args.estimates}", **report_options)


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
        if os.path.isdir(oracle_dir) and os.listdir(oracle_dir) and not args.overwrite:
            raise AdvsepError(f"{oracle_dir}: exists; pass --overwrite to replace the oracle estimates of an earlier "
                              "evaluation, or choose another --out")
    inputs = [folder for folder in (args.estimates, args.references, *(args.compare or [])) if folder]
    paths = [os.path.join(args.out, name) for name in names]
    check_output_files(paths, args.overwrite, "the results of an earlier evaluation",
                       {folder: "an input folder" for folder in inputs})
    # --overwrite replaces an earlier evaluation's files, not a user's own results.json or
    # report.html that happen to share their names: the folder must hold an evaluation's result.
    existing = [p for p in [*paths, os.path.join(args.out, "report_files")] if os.path.lexists(p)]
    if existing and not _is_evaluation_output(args.out, results_json):
        raise AdvsepError(f"{existing[0]}: exists, and {args.out} holds no results of an earlier "
                          "evaluation; not replaced, even with --overwrite: choose another --out")
    for path in existing:
        if path.endswith(results_json) and not _is_result(path):
            raise AdvsepError(f"{path}: exists and is not an evaluation's results; not replaced, "
                              "even with --overwrite: choose another --out")


def _is_evaluation_output(folder: str, results_json: str) -> bool:
    """Whether `folder` holds a results.json that an evaluation wrote (its own or its mixture's)."""
    return any(_is_result(os.path.join(folder, *parts, results_json))
               for parts in ((), ("mixture",)))


def _is_result(path: str) -> bool:
    from advsep_tf.errors import AdvsepError
    from advsep_tf.evaluate import load_result

    try:
        load_result(path)
        return True
    except AdvsepError:
        return False


def _evaluate(evaluate, estimates, references, out, sources, no_progress, description="evaluate"):
    """`evaluate_folders` (or, without estimates, `evaluate_mixture_as_estimate`) with a bar."""
    from tqdm.auto import tqdm

    bars = []

    def progress(done, total):
        # Created on the first finished track, so that an input error is not printed after a bar.
        if not bars:
            bars.append(tqdm(total=total, desc=description, unit="track", disable=no_progress, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    folders = (references,) if estimates is None else (estimates, references)
    try:
        return evaluate(*folders, out_dir=out, sources=sources, progress=progress)
    finally:
        for bar in bars:
            bar.close()


def _shared_references(results):
    """(references folder, sources) of compared results where all have the same and the folder is
    still there, so that the mixture as estimate can be scored beside them; None otherwise."""
    settings = {(os.path.abspath(r.references_dir), tuple(r.sources)) for r in results.values() if r.references_dir}
    if len(settings) != 1:
        return None
    references, sources = settings.pop()
    return (references, list(sources)) if os.path.isdir(references) else None


def _write_comparison(results, out, format_comparison, plot_boxplots):
    plot_boxplots(results, os.path.join(out, "boxplot_sdr.png"))
    if len(results) > 1:
        table = format_comparison(results, ("SDR", "SIR", "SAR", "ISR"))
        print(table)
        from advsep_tf.files import write_atomically

        write_atomically(os.path.join(out, "comparison.md"), table + "\n")


BOXPLOT_CAPTION = "SDR per track: a panel per source, a box per model; triangles are means."

cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
