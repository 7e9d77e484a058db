"""Audio corpora -> spectrogram-patch shards: the library behind `advsep-tf-prepare`.

    --dataset KIND=PATH ...  --(datasets)-->  track records  --(splits)-->  roles
        --> jobs: one per (track, role), in a fixed order (roles in `splits.role_order`, tracks
            in dataset order)
        --> decode, check, patch and serialize each job (in `workers` processes when > 1)
        --> shards: each role's examples, in job order, cut every `examples_per_shard`
        --> manifest.json (written last)

A shard's bytes depend only on the config, the inputs and the job order, never on the number of
workers or on interruptions. That makes preparation resumable: after each closed shard the
journal (`prepare-journal.json`, replaced atomically) records the shard's sha256 and where in
the job list it ends. A rerun of the same command on the same inputs keeps the journalled
shards whose checksums still match, deletes everything else (half-written `*.tmp` files, shards
the journal does not vouch for), and goes on from the end of the last kept shard; the final
shard set is identical to an uninterrupted run's. Different inputs, config or options start
clean. Until `manifest.json` exists the folder is not a shard set (`ShardSet.open` refuses it).

Input problems (undecodable, empty, truncated or NaN/inf audio, stems of different lengths,
missing stems, sample rates or channel counts that cannot be honoured, metadata naming absent
audio) raise an `AdvsepError` naming the file (`on_error="fail"`), or, with `on_error="skip"`,
drop that track from that role and are listed in the manifest and the summary.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np

from advsep_tf.config import Config
from advsep_tf.data_pipelines import shards
from advsep_tf.data_pipelines.datasets import (
    PAIRED_ROLES,
    AudioRef,
    MissingStemError,
    all_records,
    load_inputs,
    origin_labels,
    role_inputs,
)
from advsep_tf.data_pipelines.splits import (
    UNUSED,
    assign_roles,
    load_split,
    role_order,
    write_split,
)
from advsep_tf.errors import AdvsepError
from advsep_tf.files import (
    check_output_folder,
    is_url,
    load_json_or_yaml,
    refuse_protected,
    sha256_of,
    write_atomically,
)

JOURNAL = "prepare-journal.json"
JOURNAL_FORMAT = "advsep-tf-prepare-journal"
# What an unfinished Beam preparation leaves (data_pipelines/beam.py).
BEAM_STAGING_PREFIX = ".beam-staging-"
BEAM_ERROR_NOTE = "prepare-beam-error.txt"
ON_ERROR = ("fail", "skip")
_SHARD_NAME = re.compile(r"^(?P<interim>.+\.tfrecord-\d{5})(?:-of-\d{5})?$")


@dataclass
class Job:
    """One track in one role: what to read (see `datasets.role_inputs`)."""

    role: str
    track: str
    inputs: dict[str, Optional[list[AudioRef]]]

    @property
    def refs(self) -> list[AudioRef]:
        return [r for refs in self.inputs.values() if refs for r in refs]


@dataclass
class JobResult:
    examples: list[bytes] = field(default_factory=list)
    seconds: float = 0.0
    silent: int = 0
    error: Optional[str] = None
    file: Optional[str] = None


@dataclass
class Plan:
    """Who does what: records by role, the jobs of each sharded role, planning-time skips."""

    assignment: dict
    jobs: dict[str, list[Job]]
    skipped: list[dict]
    test_tracks: list[str]


def sharded_roles(config: Config) -> list[str]:
    return [r for r in role_order(config) if r != "test"]


def plan_preparation(
    config: Config,
    datasets: list[tuple[str, str]],
    split_file: Optional[str] = None,
    on_error: str = "fail",
) -> Plan:
    """Read every dataset, assign roles (split spec or defaults), and resolve each job's files."""
    if on_error not in ON_ERROR:
        raise AdvsepError(f"--on-error {on_error}: expected one of {', '.join(ON_ERROR)}")
    records = all_records(datasets, config)
    broken = [r for r in records if r.problem]
    if broken and on_error == "fail":
        raise AdvsepError(broken[0].problem)
    assignment = assign_roles(records, config, load_split(split_file, config))
    skipped = []
    for record in broken:
        roles = [
            role for role, members in assignment.items() if record in members and role != UNUSED
        ]
        skipped.append(_skip_entry(record.key, ",".join(roles), record.problem))
    jobs: dict[str, list[Job]] = {}
    for role in sharded_roles(config):
        jobs[role] = []
        for record in assignment.get(role, []):
            if record.problem:
                continue
            try:
                inputs = role_inputs(record, role, config)
            except MissingStemError as exc:
                if on_error == "fail":
                    raise
                skipped.append(_skip_entry(record.key, role, str(exc)))
                continue
            jobs[role].append(Job(role, record.key, inputs))
    test_tracks = [r.key for r in assignment.get("test", [])]
    return Plan(assignment, jobs, skipped, test_tracks)


def _skip_entry(track: str, role: str, reason: str, refs: Optional[list[AudioRef]] = None) -> dict:
    """What the manifest and the summary say about a skipped track; `file` is the file the
    message names first (messages start with it)."""
    named = [r.path for r in refs or [] if r.path in reason]
    file = (
        min(named, key=reason.find)
        if named
        else (reason.split(": ", 1)[0] if ": " in reason else None)
    )
    return {"file": file, "track": track, "role": role, "reason": reason}


# -- one job ------------------------------------------------------------------------------------


def job_keys(role: str, config: Config) -> list[str]:
    """The waveforms a role's examples hold, in channel order (the first decides silence)."""
    if role in PAIRED_ROLES:
        return ["mixture", *config.sources]
    if role == "mixtures":
        return ["mixture"]
    return [role.split("/", 1)[1]]


def process_job(job: Job, config: Config, adapter=None) -> JobResult:
    """Decode, check and patch one track for one role; serialized examples of its non-silent
    patches."""
    try:
        audio = load_inputs(job.inputs, job.track, config, adapter)
    except AdvsepError as exc:
        entry = _skip_entry(job.track, job.role, str(exc), job.refs)
        return JobResult(error=str(exc), file=entry["file"])
    keys = job_keys(job.role, config)
    patches, keep = shards.track_patches(audio, config, keys)
    examples = [
        shards.serialize_patch(job.role, patches[i], job.track, int(i))
        for i in np.flatnonzero(keep)
    ]
    return JobResult(examples, len(audio[keys[0]]) / config.audio.sample_rate, int((~keep).sum()))


_WORKER: dict = {}


def _init_worker(config_data: dict) -> None:
    import advsep_tf  # noqa: F401 - TensorFlow's environment first
    import tensorflow as tf

    # One thread per worker: the workers are the parallelism.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _WORKER["config"] = Config.from_dict(config_data)


def _work(job: Job) -> JobResult:
    return process_job(job, _WORKER["config"])


def run_jobs(jobs: list[Job], config: Config, workers: int = 1) -> Iterator[JobResult]:
    """Results of `jobs` in order; with workers > 1 computed by that many processes ahead of use."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield process_job(job, config)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(config.to_dict(),)
    ) as pool:
        pending: collections.deque = collections.deque()
        remaining = iter(jobs)
        try:
            for job in itertools.islice(
                remaining, 2 * workers
            ):  # bounded look-ahead: bounded memory
                pending.append(pool.submit(_work, job))
            while pending:
                result = pending.popleft().result()
                job = next(remaining, None)
                if job is not None:
                    pending.append(pool.submit(_work, job))
                yield result
        finally:
            for future in pending:
                future.cancel()


# -- the journal ----------------------------------------------------------------------------------


def _empty_stats() -> dict:
    return {"tracks": 0, "seconds": 0.0, "silent": 0}


class Journal:
    """What an interrupted run finished: per role, closed shards with checksums and end positions.

    A role's state: "shards" (file, examples, sha256, "end": [job index, examples of that job in
    this and earlier shards], "stats": tracks, seconds and silent patches of the jobs before
    that job), "skipped" (entries with the job's "index"), "done" and, when done, "final" stats.
    """

    def __init__(self, out_dir: str, fingerprint: str, data: Optional[dict] = None):
        self.path = os.path.join(out_dir, JOURNAL)
        self.data = data or {"format": JOURNAL_FORMAT, "fingerprint": fingerprint, "roles": {}}

    def role(self, role: str) -> dict:
        return self.data["roles"].setdefault(
            role, {"shards": [], "skipped": [], "done": False, "final": None}
        )

    def save(self) -> None:
        write_atomically(self.path, json.dumps(self.data))

    @staticmethod
    def resume_point(state: dict) -> tuple[int, int, dict, list[dict]]:
        """(job index, examples of that job already written, stats and skips of the jobs before
        it)."""
        if not state["shards"]:
            return 0, 0, _empty_stats(), []
        last = state["shards"][-1]
        first = last["end"][0]
        return (
            first,
            last["end"][1],
            dict(last["stats"]),
            [e for e in state["skipped"] if e["index"] < first],
        )


def _fingerprint(config: Config, plan: Plan, examples_per_shard: int, on_error: str) -> str:
    """What the shards' bytes depend on: data config, jobs with their files' sizes and times."""
    data = config.to_dict()

    def stat(path):
        try:
            info = os.stat(path)
            return [info.st_size, info.st_mtime_ns]
        except OSError:
            return None

    content = {
        "format": shards.FORMAT_VERSION,
        "config": {s: data[s] for s in Config.DATA_SECTIONS},
        "examples_per_shard": examples_per_shard,
        "on_error": on_error,
        "skipped": plan.skipped,
        "jobs": {
            role: [
                [j.track, [[r.path, r.stream, r.channel, stat(r.path)] for r in j.refs]]
                for j in jobs
            ]
            for role, jobs in plan.jobs.items()
        },
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _shard_files(out_dir: str) -> list[str]:
    return sorted(n for n in os.listdir(out_dir) if _SHARD_NAME.match(n))


def _open_out_dir(out_dir: str, fingerprint: str, overwrite: bool) -> tuple[Journal, int]:
    """Clear or resume `out_dir`; the journal to continue and the number of shards kept."""
    clear_out_dir(out_dir, overwrite, resume=not overwrite)
    data = None
    if not overwrite:
        try:
            data = load_json_or_yaml(os.path.join(out_dir, JOURNAL), "preparation journal")
        except AdvsepError:  # none, or cut short before the atomic writes: start clean
            data = None
        if (
            not isinstance(data, dict)
            or data.get("format") != JOURNAL_FORMAT
            or data.get("fingerprint") != fingerprint
        ):
            data = None
    journal = Journal(out_dir, fingerprint, data)
    kept = 0
    for state in journal.data["roles"].values():
        verified = []
        for shard in state["shards"]:
            path = os.path.join(out_dir, shard["file"])
            if not os.path.isfile(path) or sha256_of(path) != shard["sha256"]:
                break
            verified.append(shard)
        if len(verified) < len(state["shards"]):
            state["shards"], state["done"], state["final"] = verified, False, None
            state["skipped"] = [
                e
                for e in state.get("skipped", [])
                if verified and e["index"] < verified[-1]["end"][0]
            ]
        kept += len(verified)
    referenced = {s["file"] for state in journal.data["roles"].values() for s in state["shards"]}
    for name in _shard_files(out_dir):
        if name not in referenced:
            os.remove(os.path.join(out_dir, name))
    journal.save()
    return journal, kept


# -- the output folder, shared with the Beam preparation -------------------------------------------


def _is_leftover(name: str) -> bool:
    """A temporary of a shard, the journal, the manifest or the Beam error note: never complete.
    (`advsep_tf.files`'s `.NAME.PID.TOKEN.tmp`, or an older `NAME.tmp`.)"""
    return name.endswith(".tmp") and (
        ".tfrecord-" in name
        or name.lstrip(".").startswith((shards.MANIFEST, JOURNAL, BEAM_ERROR_NOTE))
    )


def clear_out_dir(out_dir: str, overwrite: bool, resume: bool) -> None:
    """Make `out_dir` ready for a preparation, local or Beam (a gs:// folder too).

    A finished shard set is refused or, with `overwrite`, unmade: its manifest goes first, so that
    from then on the folder is not a shard set. What unfinished runs left is removed: temporaries,
    Beam staging folders and error notes. With `resume`, an unfinished local run's shards and
    journal stay for the journal to vouch for (shards a finalization had renamed get their interim
    names back); without it, they go too.
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    gfile.makedirs(out_dir)
    manifest = os.path.join(out_dir, shards.MANIFEST)
    if gfile.exists(manifest):
        if not overwrite:
            raise AdvsepError(
                f"{out_dir}: already holds a prepared shard set (pass --overwrite to replace it)"
            )
        gfile.remove(manifest)
    for name in sorted(n.rstrip("/") for n in gfile.listdir(out_dir)):
        path = os.path.join(out_dir, name)
        shard = _SHARD_NAME.match(name)
        if name.startswith(BEAM_STAGING_PREFIX):
            gfile.rmtree(path)
        elif (
            _is_leftover(name)
            or name == BEAM_ERROR_NOTE
            or (not resume and (shard or name == JOURNAL))
        ):
            gfile.remove(path)
        elif shard and shard["interim"] != name:
            gfile.rename(path, os.path.join(out_dir, shard["interim"]), overwrite=True)


def manifest_header(
    datasets: list[tuple[str, str]], split_file: Optional[str], test_tracks: list[str]
) -> dict:
    """What a shard set's manifest says about its inputs."""
    return {
        "datasets": [
            {"kind": k, "path": p if is_url(p) else os.path.abspath(p), "origin": o}
            for (k, p), o in zip(datasets, origin_labels(datasets))
        ],
        "split": os.path.abspath(split_file) if split_file else None,
        "test_tracks": list(test_tracks),
    }


def build_manifest(
    config: Config,
    header: dict,
    roles: dict[str, dict],
    skipped: list[dict],
    resumed_shards: int,
    started: float,
) -> dict:
    """The manifest of a shard set, the same from the local and the Beam preparation.

    `header`: `manifest_header`'s; `roles`: {role: {"shards": its final shard entries, "tracks":
    its jobs' tracks in job order, "skipped": skip entries of its jobs, "seconds": audio seconds
    of the others, "silent": their silent patches dropped}}, in role order; `skipped`: the
    planning-time skips, listed first.
    """
    manifest = shards.new_manifest(config)
    manifest.update(header)
    skipped = list(skipped)
    for role, done in roles.items():
        dropped = {entry["track"] for entry in done["skipped"]}
        skipped += done["skipped"]
        manifest["roles"][role] = {
            "examples": sum(s["examples"] for s in done["shards"]),
            "shards": done["shards"],
            "tracks": [track for track in done["tracks"] if track not in dropped],
            "seconds": round(done["seconds"], 3),
            "silent_patches_dropped": done["silent"],
        }
    manifest["skipped"] = skipped
    manifest["resumed_shards"] = resumed_shards
    manifest["seconds_elapsed"] = round(time.time() - started, 2)
    return manifest


def is_shard_folder(path: str) -> bool:
    """Whether `path` holds a shard set, or what an unfinished preparation left (its journal, or a
    Beam run's staging folder or error note): the folders --out may continue or --overwrite."""
    from advsep_tf.data_pipelines.datasets import load_json_or_yaml

    for name, format_ in ((shards.MANIFEST, shards.FORMAT), (JOURNAL, JOURNAL_FORMAT)):
        try:
            content = load_json_or_yaml(os.path.join(path, name), name)
        except AdvsepError:
            continue
        if isinstance(content, dict) and content.get("format") == format_:
            return True
    return any(n.startswith(BEAM_STAGING_PREFIX) or n == BEAM_ERROR_NOTE for n in os.listdir(path))


def check_out_dir(
    out_dir: str, overwrite: bool, datasets: list[tuple[str, str]], split_file: Optional[str] = None
) -> None:
    """Before any work: SHARD_DIR is new, empty, a shard set or an unfinished one, and --overwrite
    is never applied to the current directory or a folder holding an input."""
    check_output_folder(out_dir, is_shard_folder, "a shard set (or an unfinished one)")
    if overwrite:
        inputs = {path: f"the {kind} dataset" for kind, path in datasets}
        refuse_protected(
            out_dir, {**inputs, **({split_file: "the split spec"} if split_file else {})}
        )


# -- the whole preparation -------------------------------------------------------------------------


def prepare(
    config: Config,
    datasets: list[tuple[str, str]],
    out_dir: str,
    split_file: Optional[str] = None,
    overwrite: bool = False,
    progress: bool = True,
    examples_per_shard: int = shards.EXAMPLES_PER_SHARD,
    on_error: str = "fail",
    workers: int = 1,
) -> dict:
    """Write (or finish) the shard set for `datasets` ([(kind, path)]) in `out_dir`; return its
    manifest.

    `workers` > 1 starts that many processes (spawned: TensorFlow is not fork-safe), so a script
    that calls this must guard its entry point with `if __name__ == "__main__":`.
    """
    from tqdm.auto import tqdm

    start = time.time()
    if examples_per_shard < 1:
        raise AdvsepError(f"examples per shard must be >= 1, got {examples_per_shard}")
    check_out_dir(out_dir, overwrite, datasets, split_file)
    plan = plan_preparation(config, datasets, split_file, on_error)
    roles = [r for r in sharded_roles(config) if plan.jobs.get(r)]
    if not roles:
        raise AdvsepError(f"{', '.join(p for _, p in datasets)}: no tracks to prepare")
    journal, kept = _open_out_dir(
        out_dir, _fingerprint(config, plan, examples_per_shard, on_error), overwrite
    )

    todo: list[Job] = []
    for role in roles:
        state = journal.role(role)
        if not state["done"]:
            todo += plan.jobs[role][Journal.resume_point(state)[0] :]
    total = sum(len(plan.jobs[r]) for r in roles)
    bar = tqdm(
        total=total,
        initial=total - len(todo),
        desc="prepare",
        unit="track",
        disable=not progress,
        dynamic_ncols=True,
        smoothing=0.1,
    )
    counters = {"patches": 0, "seconds": 0.0, "started": time.time()}
    results = run_jobs(todo, config, workers)
    writer = None
    try:
        for role in roles:
            state = journal.role(role)
            if state["done"]:
                continue
            first, already_written, stats, skipped_here = Journal.resume_point(state)
            writer = shards.RoleShardWriter(out_dir, role, examples_per_shard, state["shards"])
            for index in range(first, len(plan.jobs[role])):
                job = plan.jobs[role][index]
                result = next(results)
                before = dict(stats)
                if result.error is not None:
                    if on_error == "fail":
                        raise AdvsepError(result.error)
                    skipped_here.append(
                        {
                            "index": index,
                            "file": result.file,
                            "track": job.track,
                            "role": role,
                            "reason": result.error,
                        }
                    )
                    state["skipped"] = list(skipped_here)
                else:
                    for k in range(already_written if index == first else 0, len(result.examples)):
                        if writer.write(result.examples[k]):  # closed a shard: journal it
                            shard = {
                                **writer.closed_shards[-1],
                                "end": [index, k + 1],
                                "stats": before,
                            }
                            state["shards"] = [*state["shards"], shard]
                            journal.save()
                    stats["tracks"] += 1
                    stats["seconds"] += result.seconds
                    stats["silent"] += result.silent
                    counters["patches"] += len(result.examples)
                    counters["seconds"] += result.seconds
                bar.update(1)
                rate = counters["patches"] / max(time.time() - counters["started"], 1e-6)
                bar.set_postfix_str(
                    f"{role}, {counters['patches']} patches ({rate:.0f}/s), "
                    f"{counters['seconds'] / 60:.1f} min audio",
                    refresh=False,
                )
            if writer.flush():
                state["shards"] = [
                    *state["shards"],
                    {
                        **writer.closed_shards[-1],
                        "end": [len(plan.jobs[role]), 0],
                        "stats": dict(stats),
                    },
                ]
            state["skipped"] = skipped_here
            state["done"], state["final"] = True, stats
            journal.save()
            writer = None
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        results.close()
        bar.close()

    done = {}
    for role in roles:
        state = journal.role(role)
        done[role] = {
            "shards": shards.finalize_shards(
                out_dir,
                [{k: s[k] for k in ("file", "examples", "sha256")} for s in state["shards"]],
            ),
            "tracks": [job.track for job in plan.jobs[role]],
            "skipped": [{k: v for k, v in e.items() if k != "index"} for e in state["skipped"]],
            "seconds": state["final"]["seconds"],
            "silent": state["final"]["silent"],
        }
    header = manifest_header(datasets, split_file, plan.test_tracks)
    manifest = build_manifest(config, header, done, plan.skipped, kept, start)
    shards.write_manifest(out_dir, manifest)
    os.remove(journal.path)
    return manifest


def write_default_split(
    config: Config, datasets: list[tuple[str, str]], path: str, split_file: Optional[str] = None
) -> dict[str, list[str]]:
    """Write the split spec for `datasets` (defaults, or `split_file` made explicit); {role: track
    ids}."""
    records = all_records(datasets, config)
    assignment = assign_roles(records, config, load_split(split_file, config))
    write_split(path, assignment, config)
    return {role: [r.key for r in members] for role, members in assignment.items()}


def format_split_summary(roles: dict[str, list[str]], path: str) -> str:
    lines = [f"Wrote the split spec {path}:"]
    for role, tracks in roles.items():
        if tracks:
            lines.append(f"  {role:<22}{len(tracks):>6} track(s)")
    lines.append(f"Edit it, then prepare with --split {path}")
    return "\n".join(lines)


def format_summary(manifest: dict, out_dir: str) -> str:
    resumed = manifest.get("resumed_shards", 0)
    note = f" (resumed: {resumed} finished shard(s) kept, checked by sha256)" if resumed else ""
    lines = [f"Prepared {out_dir} in {manifest['seconds_elapsed']:.1f} s{note}:"]
    lines.append(
        f"  {'role':<22}{'tracks':>8}{'minutes':>10}{'patches':>10}"
        f"{'silent dropped':>16}{'shards':>8}"
    )
    total_seconds = 0.0
    for role, info in manifest["roles"].items():
        total_seconds += info["seconds"]
        lines.append(
            f"  {role:<22}{len(info['tracks']):>8}{info['seconds'] / 60:>10.2f}"
            f"{info['examples']:>10}"
            f"{info['silent_patches_dropped']:>16}{len(info['shards']):>8}"
        )
    elapsed = max(manifest["seconds_elapsed"], 1e-6)
    lines.append(
        f"  {total_seconds / 60:.2f} minutes of audio at {total_seconds / elapsed:.1f} s of audio "
        f"per second"
    )
    if manifest.get("test_tracks"):
        lines.append(f"  held-out test tracks (not sharded): {len(manifest['test_tracks'])}")
    skipped = manifest.get("skipped") or []
    if skipped:
        lines.append(f"  skipped {len(skipped)} track(s) (--on-error skip):")
        for entry in skipped:
            lines.append(f"    {entry['role']} {entry['track']}: {entry['reason']}")
    return "\n".join(lines)
