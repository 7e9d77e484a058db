"""Spectrogram patches -> TFRecord shards + manifest.json, written so that nothing half-written
ever reads as complete.

Every shard is written under a temporary name (`advsep_tf.files`'s) and renamed when closed
(to `<role>.tfrecord-NNNNN`, then to `...-NNNNN-of-NNNNN` when the role's count is known);
`manifest.json` (config, examples and sha256 per shard) is written last, atomically. A shard set
without a manifest is not a shard set: `ShardSet.open` refuses it.

Example features (float32 log1p magnitudes as raw bytes, (nb_bins, nb_frames) per channel):
    paired roles (train, valid):  "mixture" (F, T, 1), "sources" (F, T, nb_stems), "track", "patch"
    "mixtures":                   "mixture" (F, T, 1), "track", "patch"
    "solo/<source>":              "excerpt" (F, T, 1), "track", "patch"
"track" is the track's id (ORIGIN:TRACK), "patch" the patch's index in its track before silent
patches were dropped: patch p covers frames [p * patch_hop, p * patch_hop + nb_frames) (format
version 2; version 1 shards have no "patch").
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np

from advsep_tf.config import Config
from advsep_tf.errors import AdvsepError, ConfigMismatchError
from advsep_tf.files import (
    load_json_or_yaml,
    move_into_place,
    sha256_of,
    temporary_path,
    write_atomically,
)

# TensorFlow is imported where it is used: the command line takes EXAMPLES_PER_SHARD from here
# before TensorFlow's start-up lines are silenced.

MANIFEST = "manifest.json"
FORMAT = "advsep-tf-shards"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
EXAMPLES_PER_SHARD = 256


def role_file_stem(role: str) -> str:
    """File-name form of a role: 'solo/vocals' -> 'solo-vocals'."""
    return role.replace("/", "-")


def feature_keys(role: str) -> tuple[str, ...]:
    if role in ("train", "valid"):
        return ("mixture", "sources")
    if role == "mixtures":
        return ("mixture",)
    return ("excerpt",)


def _waveform_levels_db(waveform: np.ndarray, config: Config, nb_patches: int) -> np.ndarray:
    """RMS level (dBFS) of the samples each training patch covers, for the silence threshold."""
    spec = config.spectrogram
    from advsep_tf import transforms

    pad = transforms.edge_padding(spec.n_fft, spec.n_hop)
    padded = np.pad(waveform, (pad, pad + spec.nb_frames * spec.n_hop + spec.n_fft))
    span = (spec.nb_frames - 1) * spec.n_hop + spec.n_fft
    levels = np.empty(nb_patches, np.float32)
    for p in range(nb_patches):
        start = p * spec.patch_hop * spec.n_hop
        segment = padded[start : start + span]
        levels[p] = 10 * np.log10(np.mean(np.square(segment, dtype=np.float64)) + 1e-20)
    return levels


def track_patches(
    audio: dict[str, np.ndarray], config: Config, keys: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Training patches of a track: (nb_patches, nb_bins, nb_frames, len(keys)) and a keep mask.

    `keys` name the waveforms in `audio` to transform, in channel order; the first one decides
    silence (the mixture for paired tracks, the excerpt itself for solo recordings).
    """
    import tensorflow as tf

    from advsep_tf import transforms

    spec = config.spectrogram
    waveforms = np.stack([audio[k] for k in keys])
    spectrum = transforms.stft(waveforms, spec.n_fft, spec.n_hop)
    log_spectrum = transforms.log_magnitude(spectrum, spec.nb_bins)
    patches = transforms.to_patches(log_spectrum, spec.nb_frames, spec.patch_hop)  # (c*n, F, T, 1)
    nb_channels = len(keys)
    patches = tf.reshape(patches, [nb_channels, -1, spec.nb_bins, spec.nb_frames])
    patches = tf.transpose(patches, [1, 2, 3, 0]).numpy()
    keep = _waveform_levels_db(waveforms[0], config, len(patches)) >= spec.silence_threshold_db
    return patches, keep


def _bytes_feature(value: bytes) -> "tf.train.Feature":  # noqa: F821 - TensorFlow imported lazily
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_patch(role: str, patch: np.ndarray, track_id: str, index: int = -1) -> bytes:
    """patch: (F, T, 1 + nb_stems) for paired roles, (F, T, 1) otherwise; index: its place in the
    track."""
    import tensorflow as tf

    patch = np.ascontiguousarray(patch, dtype=np.float32)
    features = {
        "track": _bytes_feature(track_id.encode()),
        "patch": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
    }
    if role in ("train", "valid"):
        features["mixture"] = _bytes_feature(np.ascontiguousarray(patch[..., :1]).tobytes())
        features["sources"] = _bytes_feature(np.ascontiguousarray(patch[..., 1:]).tobytes())
    else:
        features[feature_keys(role)[0]] = _bytes_feature(patch.tobytes())
    # deterministic: map fields in key order, so that the bytes (and shard checksums) do not depend
    # on the process that wrote them (protobuf's map order otherwise varies between processes).
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(
        deterministic=True
    )


def interim_shard_name(role: str, index: int) -> str:
    """A closed shard's name before the role's shard count is known."""
    return f"{role_file_stem(role)}.tfrecord-{index:05d}"


class RoleShardWriter:
    """Writes one role's examples into shards of `examples_per_shard`, each renamed when complete.

    `closed_shards` continues a role whose first shards were written by an interrupted run
    (dicts with "file", "examples", "sha256"). Shard boundaries depend only on the order of the
    examples, so the same examples give the same shards, resumed or not.
    """

    def __init__(
        self,
        out_dir: str,
        role: str,
        examples_per_shard: int = EXAMPLES_PER_SHARD,
        closed_shards: list[dict] | None = None,
    ):
        self.out_dir, self.role, self.examples_per_shard = out_dir, role, examples_per_shard
        self.closed_shards: list[dict] = [dict(s) for s in closed_shards or []]
        self._writer = None
        self._count = 0
        self._tmp_path = None

    def write(self, record: bytes) -> bool:
        """Append one serialized example; True when this closed a shard."""
        if self._writer is None:
            import tensorflow as tf

            index = len(self.closed_shards)
            self._tmp_path = temporary_path(
                os.path.join(self.out_dir, interim_shard_name(self.role, index))
            )
            self._writer = tf.io.TFRecordWriter(self._tmp_path)
        self._writer.write(record)
        self._count += 1
        if self._count >= self.examples_per_shard:
            self._close_shard()
            return True
        return False

    def _close_shard(self) -> None:
        self._writer.close()
        index = len(self.closed_shards)
        final = os.path.join(self.out_dir, interim_shard_name(self.role, index))
        move_into_place(self._tmp_path, final)
        self.closed_shards.append(
            {"file": os.path.basename(final), "examples": self._count, "sha256": sha256_of(final)}
        )
        self._writer, self._count, self._tmp_path = None, 0, None

    def flush(self) -> bool:
        """Close the open shard, if any; True when that closed one."""
        if self._writer is None:
            return False
        self._close_shard()
        return True

    def abort(self) -> None:
        """Drop the open shard (half-written: it never becomes a file with a shard's name)."""
        if self._writer is not None:
            self._writer.close()
            if self._tmp_path and os.path.exists(self._tmp_path):
                os.remove(self._tmp_path)
        self._writer, self._count, self._tmp_path = None, 0, None

    def close(self) -> list[dict]:
        """Close the open shard and give every shard its final '-of-N' name (checksums stay
        valid)."""
        self.flush()
        return finalize_shards(self.out_dir, self.closed_shards)


def finalize_shards(out_dir: str, closed_shards: list[dict]) -> list[dict]:
    """Rename a role's interim shards 'X.tfrecord-NNNNN' to 'X.tfrecord-NNNNN-of-NNNNN'."""
    total = len(closed_shards)
    final = []
    for shard in closed_shards:
        name = f"{shard['file']}-of-{total:05d}"
        os.replace(os.path.join(out_dir, shard["file"]), os.path.join(out_dir, name))
        final.append({"file": name, "examples": shard["examples"], "sha256": shard["sha256"]})
    return final


@dataclass
class ShardSet:
    """A complete, verified shard set: its directory, manifest and config."""

    directory: str
    manifest: dict
    config: Config

    @classmethod
    def open(
        cls, directory: str, expected: Config | None = None, verify_checksums: bool = False
    ) -> "ShardSet":
        path = os.path.join(directory, MANIFEST)
        if not os.path.isdir(directory):
            raise AdvsepError(f"{directory}: shard folder not found")
        if not os.path.isfile(path):
            raise AdvsepError(
                f"{path}: missing: not a shard set, or advsep-tf-prepare did not finish (rerun it)"
            )
        manifest = load_json_or_yaml(path, "shard manifest")
        try:
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
            if manifest.get("version", 1) not in READABLE_VERSIONS:
                raise ValueError(
                    f"version {manifest.get('version')!r} is newer than this advsep-tf reads"
                )
            config = Config.from_dict(manifest["config"], origin=path)
        except (ValueError, KeyError, AdvsepError) as exc:
            raise AdvsepError(f"{path}: not a valid shard manifest ({exc})") from None
        if expected is not None:
            diffs = expected.differences(config, Config.DATA_SECTIONS)
            if diffs:
                raise ConfigMismatchError(
                    f"{path}: shard set was prepared with a different config: "
                    f"{config.describe_differences(expected, Config.DATA_SECTIONS)} "
                    f"(differs in {', '.join(diffs)}; prepare again with this config)"
                )
        for info in manifest["roles"].values():
            for shard in info["shards"]:
                shard_path = os.path.join(directory, shard["file"])
                if not os.path.isfile(shard_path):
                    raise AdvsepError(f"{shard_path}: shard listed in the manifest is missing")
                if verify_checksums and sha256_of(shard_path) != shard["sha256"]:
                    raise AdvsepError(
                        f"{shard_path}: checksum differs from the manifest (corrupt or modified)"
                    )
        return cls(directory, manifest, config)

    @property
    def roles(self) -> list[str]:
        return [r for r, info in self.manifest["roles"].items() if info["examples"] > 0]

    def examples(self, role: str) -> int:
        return self.manifest["roles"].get(role, {}).get("examples", 0)

    def files(self, role: str) -> list[str]:
        if self.examples(role) == 0:
            raise AdvsepError(
                f"{self.directory}: shard set has no '{role}' examples (roles: "
                f"{', '.join(self.roles)})"
            )
        return [
            os.path.join(self.directory, s["file"]) for s in self.manifest["roles"][role]["shards"]
        ]


def write_manifest(out_dir: str, manifest: dict) -> None:
    write_atomically(os.path.join(out_dir, MANIFEST), json.dumps(manifest, indent=2))


def new_manifest(config: Config) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "config": config.to_dict(),
        "roles": {},
    }
