"""Audio folders -> spectrogram-patch shards: the library behind `advsep-tf-prepare`."""

from __future__ import annotations

import glob
import os
import time
from collections import Counter, defaultdict

from advsep_tf.config import Config
from advsep_tf.data_pipelines import shards
from advsep_tf.data_pipelines.datasets import PAIRED_ROLES, dataset_records, load_split, load_track_audio
from advsep_tf.errors import AdvsepError


def _clear_partial(out_dir: str, overwrite: bool) -> None:
    if os.path.isfile(os.path.join(out_dir, shards.MANIFEST)):
        if not overwrite:
            raise AdvsepError(f"{out_dir}: already holds a prepared shard set (pass --overwrite to replace it)")
        os.remove(os.path.join(out_dir, shards.MANIFEST))
    # Leftovers of an interrupted run: without a manifest they were never a shard set.
    for path in glob.glob(os.path.join(out_dir, "*.tfrecord-*")):
        os.remove(path)


def prepare(
    config: Config,
    datasets: list[tuple[str, str]],
    out_dir: str,
    split_file: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    examples_per_shard: int = shards.EXAMPLES_PER_SHARD,
) -> dict:
    """Write the shard set for `datasets` ([(kind, path)]) into `out_dir`; return its manifest."""
    from tqdm.auto import tqdm

    start = time.time()
    split = load_split(split_file)
    records = []
    for kind, path in datasets:
        records += dataset_records(kind, path, config, split)
    sharded = [r for r in records if r.role in PAIRED_ROLES or r.role == "mixtures" or r.role.startswith("solo/")]
    if not sharded:
        raise AdvsepError(f"{', '.join(p for _, p in datasets)}: no tracks to prepare")

    os.makedirs(out_dir, exist_ok=True)
    _clear_partial(out_dir, overwrite)
    writers: dict[str, shards.RoleShardWriter] = {}
    tracks_per_role, seconds_per_role = Counter(), Counter()
    patches_per_role, silent_per_role = Counter(), Counter()
    track_lists = defaultdict(list)
    rate = config.audio.sample_rate

    bar = tqdm(sharded, desc="prepare", unit="track", disable=not progress, dynamic_ncols=True)
    for record in bar:
        audio = load_track_audio(record, config)
        if record.role in PAIRED_ROLES:
            keys = ["mixture", *config.sources]
        elif record.role == "mixtures":
            keys = ["mixture"]
        else:
            keys = [record.role.split("/", 1)[1]]
        patches, keep = shards.track_patches(audio, config, keys)
        writer = writers.get(record.role) or writers.setdefault(
            record.role, shards.RoleShardWriter(out_dir, record.role, examples_per_shard)
        )
        for patch in patches[keep]:
            writer.write(shards.serialize_patch(record.role, patch, record.track_id))
        tracks_per_role[record.role] += 1
        seconds_per_role[record.role] += len(audio[keys[0]]) / rate
        patches_per_role[record.role] += int(keep.sum())
        silent_per_role[record.role] += int((~keep).sum())
        track_lists[record.role].append(f"{record.origin}:{record.track_id}")
        bar.set_postfix(patches=sum(patches_per_role.values()))

    manifest = shards.new_manifest(config)
    manifest["datasets"] = [{"kind": k, "path": os.path.abspath(p)} for k, p in datasets]
    manifest["test_tracks"] = [f"{r.origin}:{r.track_id}" for r in records if r.role == "test"]
    for role, writer in sorted(writers.items()):
        closed = writer.close()
        manifest["roles"][role] = {
            "examples": sum(s["examples"] for s in closed),
            "shards": closed,
            "tracks": track_lists[role],
            "seconds": round(seconds_per_role[role], 3),
            "silent_patches_dropped": silent_per_role[role],
        }
    manifest["seconds_elapsed"] = round(time.time() - start, 2)
    shards.write_manifest(out_dir, manifest)
    return manifest


def format_summary(manifest: dict, out_dir: str) -> str:
    lines = [f"Prepared {out_dir} in {manifest['seconds_elapsed']:.1f} s:"]
    lines.append(f"  {'role':<22}{'tracks':>8}{'minutes':>10}{'patches':>10}{'silent dropped':>16}{'shards':>8}")
    for role, info in manifest["roles"].items():
        lines.append(
            f"  {role:<22}{len(info['tracks']):>8}{info['seconds'] / 60:>10.2f}{info['examples']:>10}"
            f"{info['silent_patches_dropped']:>16}{len(info['shards']):>8}"
        )
    if manifest.get("test_tracks"):
        lines.append(f"  held-out test tracks (not sharded): {len(manifest['test_tracks'])}")
    return "\n".join(lines)
