"""advsep-tf-export: write the trained separator as a SavedModel (TF Serving) or a LiteRT model
(devices).

Both artifacts are reloaded after writing and compared with the Python separator on a fixed probe;
beyond tolerance the command fails (exit 1) and leaves nothing at --out. An existing --out is
replaced only with --overwrite, and only when it is an earlier export (see advsep_tf.files).
"""

from __future__ import annotations

import sys

from advsep_tf.cli import common, options

EPILOG = (
    "examples: advsep-tf-export --model runs/va --format saved_model --out serving/advsep/1 | "
    "advsep-tf-export --model runs/va --format litert --out advsep.tflite --quantize float16"
)


def main(argv=None) -> dict:
    p = common.parser("advsep-tf-export", __doc__, EPILOG)
    options.add(p, "--model", "--format", "--out", "--quantize", "--segment-seconds")
    options.add(p, "--overwrite", "--config")
    args = p.parse_args(argv)
    if args.format == "saved_model" and (
        args.quantize != "none" or args.segment_seconds is not None
    ):
        p.error("--quantize and --segment-seconds apply to --format litert only")
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.files import check_replaceable
    from advsep_tf.export.litert import is_litert_export
    from advsep_tf.export.saved_model import is_saved_model_export
    from advsep_tf.runs import load_run_model

    # Checked before the model is loaded: a refused --out costs no work.
    protected = {args.model: "the model being exported"}
    saved_model = args.format == "saved_model"
    check_replaceable(
        args.out,
        directory=saved_model,
        overwrite=args.overwrite,
        looks_like=is_saved_model_export if saved_model else is_litert_export,
        what=f"an earlier {'SavedModel' if saved_model else 'LiteRT'} export",
        protected=protected,
    )
    expected = load_config(args.config) if args.config else None
    model = load_run_model(args.model, expected)

    from advsep_tf.export.verification import format_result

    if args.format == "saved_model":
        from advsep_tf.export.saved_model import export_saved_model

        summary = export_saved_model(model, args.out, overwrite=args.overwrite, protected=protected)
        print(
            f"Exported SavedModel to {summary['path']} ({summary['bytes'] / 1e6:.2f} MB); "
            f"verified against the "
            f"Python separator on a {summary['probe_seconds']:g} s probe: {format_result(summary)} "
            f"(tolerance: {summary['tolerance']})"
        )
        return summary
    from advsep_tf.export.litert import export_litert

    summary = export_litert(
        model,
        args.out,
        quantize=args.quantize,
        segment_seconds=args.segment_seconds,
        overwrite=args.overwrite,
        protected=protected,
    )
    kind = "float32" if summary["quantize"] == "none" else summary["quantize"]
    print(
        f"Exported LiteRT model to {summary['path']} ({summary['bytes'] / 1e6:.2f} MB, {kind}, "
        f"built-in ops only, "
        f"segments of {summary['segment_seconds']:g} s); verified with ai-edge-litert against the "
        f"Python separator "
        f"on a {summary['probe_seconds']:g} s probe: "
        f"{format_result(summary, with_drop=kind != 'float32')} "
        f"(tolerance: {summary['tolerance']})"
    )
    return summary


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
