"""Score a trained separator the way the model card reports it: on the held-out test singers and
previews of the real corpus (museval at 44.1 kHz) and on the real clips of ../shared/data, beside
the mixture-as-estimate and the ideal-ratio-mask oracle.

    python benchmarks/real/evaluate_pretrained.py --model pretrained --out /tmp/pretrained_eval
        [--real ../shared/real] [--data ../shared/data] [--split
        benchmarks/real/split_pretrained.yaml]
        [--mask-power 1|2] [--channel-masks shared|independent] [--role test|valid] [--mir1k-rate
        HZ]

`--mir1k-rate 44100` scores the MIR-1K singers resampled to 44.1 kHz (references and input alike)
instead of at their own 16 kHz. Their SDR stays meaningful; their SIR and SAR do not (references
with nothing above 8 kHz make BSS Eval's projection ill-conditioned: measured SIR -1.5 dB with SDR
8.1 dB), which is why 16 kHz is the default.

`--role valid` scores the validation singer and previews instead (mono, no other sets): what a
choice between models is made on before their test scores are looked at.

Writes OUT/<set>/results/{model,mixture,oracle}/results.json (the oracle full band at the set's
rate; results written before it was band-limited to the model's 4 kHz: delete them to rescore)
and prints one markdown table.
Finished parts are reused when the command is run again.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def shared_clips(data_dir: str, out_dir: str) -> str:
    """../shared/data's paired clips as <track>/{mixture,vocals,accompaniment}.wav at their own
    rate."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.files import write_atomically

    adapter = AudioAdapter.default()
    marker = os.path.join(out_dir, ".complete")
    if os.path.isfile(marker):
        return out_dir
    pairs = os.path.join(data_dir, "paired_2stem")
    for name in sorted(os.listdir(pairs)):
        folder = os.path.join(pairs, name)
        if os.path.isdir(folder):  # MIR-1K: vocal.wav + music.wav
            vocals, rate = adapter.load(os.path.join(folder, "vocal.wav"))
            accompaniment, _ = adapter.load(os.path.join(folder, "music.wav"))
        else:  # iKala: left accompaniment, right vocals
            stereo, rate = adapter.load(folder)
            accompaniment, vocals = stereo[:, :1], stereo[:, 1:]
            name = name.rsplit(".", 1)[0]
        n = min(len(vocals), len(accompaniment))
        write_track(adapter, os.path.join(out_dir, name), vocals[:n], accompaniment[:n], rate)
    quads = os.path.join(data_dir, "paired_4stem")
    for name in sorted(os.listdir(quads)):
        stems = {
            s: adapter.load(os.path.join(quads, name, f"{s}.wav"))
            for s in ("vocals", "drums", "bass", "other")
        }
        rate = stems["vocals"][1]
        n = min(len(x) for x, _ in stems.values())
        accompaniment = sum(stems[s][0][:n] for s in ("drums", "bass", "other"))
        write_track(
            adapter, os.path.join(out_dir, name), stems["vocals"][0][:n], accompaniment, rate
        )
    write_atomically(marker, "done\n")
    return out_dir


def stereo_references(records, out_dir: str, config, rate: int = 44100) -> str:
    """The test previews as released: <track>/{mixture,<source>}.wav in stereo at `rate` (the
    project's data pipeline reads mono), each source the sum of its stems' streams."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.data_pipelines.datasets import role_inputs
    from advsep_tf.files import write_atomically

    marker = os.path.join(out_dir, ".complete")
    if os.path.isfile(marker):
        return out_dir
    adapter = AudioAdapter.default()
    for record in records:
        sources = {}
        for source in config.sources:
            waves = [
                adapter.load(ref.path, sample_rate=rate, stream=ref.stream)[0]
                for ref in role_inputs(record, "test", config)[source]
            ]
            sources[source] = waves
        n = min(len(w) for waves in sources.values() for w in waves)
        stems = {s: sum(w[:n] for w in waves) for s, waves in sources.items()}
        assert all(x.shape[1] == 2 for x in stems.values()), record.key
        folder = os.path.join(out_dir, record.key.replace(":", "_").replace("/", "_"))
        for source, audio in stems.items():
            adapter.save(os.path.join(folder, f"{source}.wav"), audio, rate)
        adapter.save(os.path.join(folder, "mixture.wav"), sum(stems.values()), rate)
    write_atomically(marker, "done\n")
    return out_dir


def resampled_references(references: str, out_dir: str, rate: int) -> str:
    """A copy of a references folder (<track>/<name>.wav) with every file resampled to `rate`: the
    data pipeline refuses to upsample a corpus itself (the model's band would be empty above it)."""
    from advsep_tf.data_pipelines.audio import AudioAdapter
    from advsep_tf.files import write_atomically

    marker = os.path.join(out_dir, ".complete")
    if os.path.isfile(marker):
        return out_dir
    adapter = AudioAdapter.default()
    for track in sorted(os.listdir(references)):
        if os.path.isdir(os.path.join(references, track)):
            for name in sorted(os.listdir(os.path.join(references, track))):
                audio, _ = adapter.load(os.path.join(references, track, name), sample_rate=rate)
                adapter.save(os.path.join(out_dir, track, name), audio, rate)
    write_atomically(marker, "done\n")
    return out_dir


def write_track(adapter, folder, vocals, accompaniment, rate):
    adapter.save(os.path.join(folder, "vocals.wav"), vocals, rate)
    adapter.save(os.path.join(folder, "accompaniment.wav"), accompaniment, rate)
    adapter.save(os.path.join(folder, "mixture.wav"), vocals + accompaniment, rate)


def score_set(separator, references: str, out_dir: str, config) -> dict:
    """The model, the oracle (full band, at the references' rate) and the mixture as estimate, by
    `advsep_tf.evaluate.evaluate_all`; finished parts are reused."""
    from advsep_tf.evaluate import evaluate_all

    start = time.time()
    results = evaluate_all(
        references,
        {"model": separator},
        os.path.join(out_dir, "results"),
        oracle=config,
        oracle_audio=os.path.join(out_dir, "estimates", "oracle"),
        sources=config.sources,
        separated_dir=os.path.join(out_dir, "estimates"),
        reuse=True,
        progress=sys.stderr.isatty(),  # a log file gets no bar
    )
    print(f"  scored in {time.time() - start:.0f} s", flush=True)
    return results


def main(argv=None):
    import advsep_tf  # noqa: F401
    from advsep_tf.cli.options import DEFAULT_SILENCE_GATE_DB, decibels_or_off
    from advsep_tf.config import load_config
    from advsep_tf.data_pipelines.datasets import all_records
    from advsep_tf.data_pipelines.splits import assign_roles, load_split
    from advsep_tf.experiment import write_test_references
    from advsep_tf.files import write_atomically
    from advsep_tf.filtering import BAND_EXTENSIONS
    from advsep_tf.separate import CHANNEL_MASKS, Separator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="pretrained")
    p.add_argument("--out", required=True)
    p.add_argument("--real", default=os.path.join(HERE, "..", "..", "..", "shared", "real"))
    p.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data"))
    p.add_argument("--split", default=os.path.join(HERE, "split_pretrained.yaml"))
    p.add_argument(
        "--mask-power", type=float, default=1.0, help="the separator's mask power (1 or 2)"
    )
    p.add_argument(
        "--channel-masks", default=CHANNEL_MASKS[0], choices=CHANNEL_MASKS, help="the separator's"
    )
    p.add_argument(
        "--band-extension",
        default=BAND_EXTENSIONS[0],
        choices=BAND_EXTENSIONS,
        help="the separator's mask extension above its band",
    )
    p.add_argument(
        "--silence-gate",
        type=decibels_or_off(-100, 0),
        default=DEFAULT_SILENCE_GATE_DB,
        help="the separator's silence gate in dB or 'off' (default: advsep-tf-separate's)",
    )
    p.add_argument(
        "--role", default="test", choices=("test", "valid"), help="the split's role to score"
    )
    p.add_argument(
        "--mir1k-rate",
        type=int,
        default=16000,
        help="rate the MIR-1K singers are scored at (native: 16000)",
    )
    args = p.parse_args(argv)

    separator = Separator.load(
        args.model,
        mask_power=args.mask_power,
        channel_masks=args.channel_masks,
        band_extension=args.band_extension,
        silence_gate_db=args.silence_gate,
    )
    config = separator.config
    sets = {}
    if os.path.isdir(args.real):
        datasets = [
            ("mir1k", os.path.join(args.real, "mir1k")),
            ("musdb18", os.path.join(args.real, "musdb18_7")),
        ]
        role = args.role
        held_out = assign_roles(
            all_records(datasets, config), config, load_split(args.split, load_config("real"))
        )[role]
        name = {"test": "test", "valid": "validation"}[role]
        # Each corpus at its own rate (MIR-1K 16 kHz, MUSDB18 44.1 kHz) unless --mir1k-rate says
        # otherwise.
        for origin, rate, label in (
            ("mir1k", 16000, f"{name} singers (MIR-1K, 16 kHz)"),
            ("musdb18", 44100, f"{name} previews (MUSDB18, 44.1 kHz)"),
        ):
            records = [r for r in held_out if r.origin == origin]
            references = write_test_references(
                records, os.path.join(args.out, f"{role}_references_{origin}"), config, rate
            )
            if origin == "mir1k" and args.mir1k_rate != rate:
                references = resampled_references(
                    references,
                    os.path.join(args.out, f"{role}_references_{origin}_{args.mir1k_rate}"),
                    args.mir1k_rate,
                )
                label = f"{name} singers (MIR-1K resampled to {args.mir1k_rate / 1000:g} kHz)"
                origin = f"{origin}_{args.mir1k_rate}"
            sets[label] = (references, os.path.join(args.out, f"{role}_{origin}"))
    if os.path.isdir(args.real) and args.role == "test":
        previews = [r for r in held_out if r.origin == "musdb18"]
        sets["test previews in stereo (MUSDB18, 44.1 kHz)"] = (
            stereo_references(
                previews, os.path.join(args.out, "test_references_musdb18_stereo"), config
            ),
            os.path.join(args.out, "test_musdb18_stereo"),
        )
    if os.path.isdir(args.data) and args.role == "test":
        sets["../shared/data clips"] = (
            shared_clips(args.data, os.path.join(args.out, "shared_clips")),
            os.path.join(args.out, "shared"),
        )
    lines = [
        "| set | tracks | source | model SDR | mixture-as-estimate SDR | oracle SDR | model SIR | "
        "model SAR |",
        "|---|---|---|---|---|---|---|---|",
    ]
    numbers = {}
    for label, (references, out_dir) in sets.items():
        print(f"{label}: {references}", flush=True)
        results = score_set(separator, references, out_dir, config)
        numbers[label] = {name: r.aggregate for name, r in results.items()}
        for source in config.sources:
            agg = {name: r.aggregate[source] for name, r in results.items()}
            lines.append(
                f"| {label} | {len(results['model'].tracks)} | {source} | "
                f"{agg['model']['SDR']['mean']:.2f} | "
                f"{agg['mixture']['SDR']['mean']:.2f} | {agg['oracle']['SDR']['mean']:.2f} | "
                f"{agg['model']['SIR']['mean']:.2f} | {agg['model']['SAR']['mean']:.2f} |"
            )
    table = "\n".join(lines)
    print("\nMean over tracks of museval's median over 1 s frames:\n\n" + table)
    write_atomically(
        os.path.join(args.out, "scores.json"),
        json.dumps(
            {
                "model": args.model,
                "role": args.role,
                "mask_power": args.mask_power,
                "channel_masks": args.channel_masks,
                "band_extension": args.band_extension,
                "silence_gate_db": args.silence_gate,
                "mir1k_rate": args.mir1k_rate,
                "sets": numbers,
                "table": table,
            },
            indent=2,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
