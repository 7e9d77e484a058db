"""advsep-tf-prepare: audio corpora -> TFRecord shards of spectrogram patches + manifest.json."""

from __future__ import annotations

import sys

from advsep_tf.cli import common, options

EPILOG = """dataset kinds (--dataset KIND=PATH, repeatable; several go into one shard set):
  dsd100         PATH/Mixtures/{Dev,Test}/<track>/mixture.wav,
                 PATH/Sources/{Dev,Test}/<track>/<stem>.wav
  musdb18        PATH/{train,test}/<track>.stem.mp4 (official validation tracks taken out of train)
  musdb18hq      PATH/{train,test}/<track>/{mixture,vocals,drums,bass,other}.wav
  medleydb       PATH/Audio/<track>/<track>_MIX.wav, <track>_STEMS/, <track>_METADATA.yaml
  ccmixter       PATH/<track>/mix.wav, source-01.wav (accompaniment), source-02.wav (vocals)
  ikala          PATH/Wavfile/<track>.wav (left: accompaniment, right: vocals)
  mir1k          PATH/Wavfile/<singer>_<song>_<clip>.wav (left: accompaniment, right: vocals;
                 paired, split by singer)
  paired         PATH/<track>/<source>.wav, optional PATH/<track>/mixture.wav
  mixtures       any tree of audio files: unlabelled mixtures
  solo/<source>  any tree of audio files: solo recordings of <source>
  synthetic      the built-in synthetic corpus (generated at PATH if PATH has none)

examples:
  advsep-tf-prepare --config paper --dataset dsd100=DSD100/ --dataset ccmixter=ccmixter/
  --write-split split.yaml
  advsep-tf-prepare --config paper --dataset dsd100=DSD100/ --dataset ccmixter=ccmixter/ --split
  split.yaml --out shards/
  advsep-tf-prepare --config demo --dataset synthetic=corpus/ --out shards/

An interrupted run resumes when rerun with the same arguments (finished shards are kept after
their checksums are verified); the result is identical to an uninterrupted run.

On an Apache Beam runner (pip install 'advsep-tf[beam]'), the same shard set, byte for byte:
  advsep-tf-prepare --config demo --dataset synthetic=corpus/ --out shards/ --runner DirectRunner
  advsep-tf-prepare --config paper --dataset dsd100=/mnt/data/DSD100/ --out /mnt/data/shards/ \\
      --runner FlinkRunner --beam-option=--flink_master=flink-host:8081 \\
      --beam-option=--environment_type=EXTERNAL --beam-option=--environment_config=localhost:50000
Pipeline options go one per --beam-option, written with '=' (--beam-option=--project=my-project).
Workers read the corpus at the paths the driver sees (a shared file system); README.md, "Training
at scale", has the set-up. A Beam run does not resume an interrupted one (its runner retries failed
work itself).
"""


def main(argv=None) -> None:
    import os

    p = common.parser("advsep-tf-prepare", __doc__, EPILOG)
    options.add(p, "--config", "--dataset", "--split", "--write-split", "--out", "--overwrite")
    options.add(p, "--examples-per-shard", "--on-error", "--workers", "--no-progress")
    options.add(p, "--runner", "--beam-option")
    args = p.parse_args(argv)
    if args.examples_per_shard < 1:
        p.error("--examples-per-shard must be >= 1")
    if args.workers < 0:
        p.error("--workers must be >= 0")
    if not args.out and not args.write_split:
        p.error("--out is required (or --write-split FILE to write the split spec only)")
    if args.beam_option and not args.runner:
        p.error("--beam-option needs --runner")
    if args.runner and args.workers != 1:
        p.error(
            "--workers is for the local path; a Beam runner's parallelism is its own option "
            "(e.g. --beam-option=--direct_num_workers=2)"
        )
    common.quiet_tensorflow(args.verbose)

    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.datasets import dataset_kind_problem, parse_dataset_arg
    from advsep_tf.data_pipelines.prepare import (
        format_split_summary,
        format_summary,
        prepare,
        write_default_split,
    )
    from advsep_tf.errors import AdvsepError

    try:
        datasets = [parse_dataset_arg(d) for d in args.dataset]
    except AdvsepError as exc:
        p.error(str(exc))
    config = load_config(args.config)
    for kind, path in datasets:
        problem = dataset_kind_problem(kind, path, config)
        if problem:
            p.error(problem)
    if args.write_split:
        from advsep_tf.data_pipelines.splits import is_split_spec
        from advsep_tf.files import check_replaceable

        check_replaceable(
            args.write_split,
            directory=False,
            overwrite=args.overwrite,
            looks_like=is_split_spec,
            what="a split spec",
            protected={args.split: "the split spec being read"} if args.split else None,
            option="--write-split",
        )
        roles = write_default_split(config, datasets, args.write_split, args.split)
        print(format_split_summary(roles, args.write_split))
        return
    # The same shard set on both paths; they differ only in what runs them.
    if args.runner:
        from advsep_tf.data_pipelines.beam import prepare_beam as write_shards

        run_options = dict(runner=args.runner, pipeline_args=args.beam_option)
    else:
        write_shards = prepare
        run_options = dict(
            progress=not args.no_progress, workers=args.workers or os.cpu_count() or 1
        )
    manifest = write_shards(
        config,
        datasets,
        args.out,
        args.split,
        args.overwrite,
        examples_per_shard=args.examples_per_shard,
        on_error=args.on_error,
        **run_options,
    )
    print(format_summary(manifest, args.out))


cli = common.console_script(main)


if __name__ == "__main__":
    sys.exit(cli())
