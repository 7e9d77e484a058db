"""The split spec: which track plays which role, with the paper's rule enforced.

A split spec is a small YAML (or JSON) file the user edits; `advsep-tf-prepare ... --write-split
FILE` writes the default one for the given datasets:

    train: [dsd100:Song A, ...]          # paired training tracks
    valid: [...]                          # paired validation tracks (sharded, for early stopping)
    test: [...]                           # paired held-out tracks (in the manifest, never sharded)
    mixtures: [ccmixter:Song B, ...]      # tracks whose mixture is an unlabelled mixture
    solo:                                 # tracks that give solo excerpts of one source
      vocals: [ccmixter:Song C, solo/vocals:take1, ...]
      accompaniment: [...]
    unused: [...]                         # tracks left out

Track ids are `ORIGIN:TRACK` (ORIGIN is the dataset kind, `kind#2` for a second dataset of the
same kind); a bare `TRACK` names that track in every dataset. `ORIGIN:singer=NAME` (or
`singer=NAME`) names every clip of a singer, in corpora that say who sings (MIR-1K). A track the
spec does not name
takes its default role, except that a spec with a `valid` list replaces the default validation
tracks (they train instead): the old `{train, valid, test}` files keep their meaning.

The paper's rule: the unpaired pools (mixtures and every solo/<source>) come from tracks disjoint
from each other and from validation and test. Paired training tracks may also feed one pool.
A violation is an error naming the tracks. Singers are kept apart the same way: a singer with a
clip in validation or test has no clip in any other role, or a test set would measure how well the
model remembers a voice.

Default roles: DSD100 Dev and MUSDB18 train tracks train (MUSDB's official validation tracks, and
every tenth DSD100 Dev track, validate), their test tracks are held out; `paired` folders train
(every tenth validates); `mixtures` and `solo/<source>` folders feed their pool. MedleyDB,
CCMixter and iKala tracks (corpora the paper uses for unpaired data) are dealt, per dataset in
track order, into the pools in turn (mixtures, solo/<source 1>, solo/<source 2>, ...; a track goes
to the next pool it can feed), except that every tenth track of a corpus of ten or more is held
out as test when it has every source.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Optional

from advsep_tf.config import Config
from advsep_tf.data_pipelines.datasets import HELD_OUT_ROLES, POOL, TrackRecord, role_refusal
from advsep_tf.errors import AdvsepError
from advsep_tf.files import load_json_or_yaml

PAIRED_SPEC_ROLES = ("train", "valid", "test")
SPEC_KEYS = (*PAIRED_SPEC_ROLES, "mixtures", "solo", "unused")
UNUSED = "unused"


def pool_roles(config: Config) -> list[str]:
    return ["mixtures", *[f"solo/{s}" for s in config.sources]]


def role_order(config: Config) -> list[str]:
    """Every role in the order shards, specs and summaries list them."""
    return [*PAIRED_SPEC_ROLES, *pool_roles(config)]


class SplitSpec:
    """A parsed split spec: {role: [track ids]} plus the ids left out."""

    def __init__(self, roles: dict[str, list[str]], unused: list[str], origin: str):
        self.roles, self.unused, self.origin = roles, unused, origin

    @classmethod
    def load(cls, path: str, config: Config) -> "SplitSpec":
        data = load_json_or_yaml(path, "split file")
        if not isinstance(data, dict):
            raise AdvsepError(
                f"{path}: a split file maps roles ({', '.join(SPEC_KEYS)}) to lists of track ids"
            )
        roles: dict[str, list[str]] = {}
        unused: list[str] = []

        def ids(key, value) -> list[str]:
            if value is None:
                return []
            if not isinstance(value, list) or not all(isinstance(v, (str, int)) for v in value):
                raise AdvsepError(f"{path}: '{key}' must be a list of track ids")
            return [str(v) for v in value]

        sources = set(config.sources)
        for key, value in data.items():
            if key in ("version", "comment"):
                continue
            if key == "solo":
                if value is None:
                    continue
                if not isinstance(value, dict):
                    raise AdvsepError(f"{path}: 'solo' maps sources to lists of track ids")
                for source, tracks in value.items():
                    if source not in sources:
                        raise AdvsepError(
                            f"{path}: solo/{source}: '{source}' is not a source of this config "
                            f"({', '.join(config.sources)})"
                        )
                    roles[f"solo/{source}"] = ids(f"solo.{source}", tracks)
            elif key.startswith("solo/"):
                if key.split("/", 1)[1] not in sources:
                    raise AdvsepError(
                        f"{path}: {key}: not a source of this config ({', '.join(config.sources)})"
                    )
                roles[key] = ids(key, value)
            elif key in (*PAIRED_SPEC_ROLES, "mixtures"):
                roles[key] = ids(key, value)
            elif key == UNUSED:
                unused = ids(key, value)
            else:
                raise AdvsepError(f"{path}: unknown key '{key}' (known: {', '.join(SPEC_KEYS)})")
        return cls(roles, unused, path)


def is_split_spec(path: str) -> bool:
    """Whether `path` is a split spec (what --write-split --overwrite may replace): a mapping whose
    keys are all split-spec keys."""
    try:
        data = load_json_or_yaml(path, "split file")
    except AdvsepError:
        return False
    known = {*SPEC_KEYS, "version", "comment"}
    return (
        isinstance(data, dict)
        and bool(data)
        and all(k in known or str(k).startswith("solo/") for k in data)
    )


def load_split(path: Optional[str], config: Config) -> Optional[SplitSpec]:
    return None if path is None else SplitSpec.load(path, config)


def _deal_pools(records: list[TrackRecord], config: Config) -> dict[str, str]:
    """Default roles of pool-kind tracks (MedleyDB, CCMixter, iKala), per dataset in track order."""
    assigned = {}
    by_origin = defaultdict(list)
    for record in records:
        if record.role == POOL:
            by_origin[record.origin].append(record)
    pools = pool_roles(config)
    for tracks in by_origin.values():
        turn = 0
        for index, record in enumerate(tracks):
            if record.problem:
                assigned[record.key] = pools[0]
                continue
            if len(tracks) >= 10 and index % 10 == 9 and not role_refusal(record, "test", config):
                assigned[record.key] = "test"
                continue
            for step in range(len(pools)):
                pool = pools[(turn + step) % len(pools)]
                if not role_refusal(record, pool, config):
                    assigned[record.key] = pool
                    turn = (turn + step + 1) % len(pools)
                    break
            else:
                assigned[record.key] = UNUSED
    return assigned


def assign_roles(
    records: list[TrackRecord], config: Config, spec: Optional[SplitSpec] = None
) -> dict[str, list[TrackRecord]]:
    """{role: [records in dataset order]} for every role of `role_order(config)` (and "unused").

    Raises AdvsepError naming the tracks when the spec names unknown tracks, puts a track where
    it cannot go, or breaks the paper's rule.
    """
    by_key = {}
    for record in records:
        if record.key in by_key:
            raise AdvsepError(f"{record.folder}: track id {record.key} appears twice")
        by_key[record.key] = record
    dealt = _deal_pools(records, config)
    roles_of: dict[str, list[str]] = {}
    for record in records:
        role = dealt.get(record.key, record.role)
        if role.startswith("solo/") and role.split("/", 1)[1] not in config.sources:
            role = UNUSED
        roles_of[record.key] = [role]

    if spec is not None:
        by_bare = defaultdict(list)
        for record in records:
            by_bare[record.track_id].append(record.key)

        by_singer = defaultdict(list)
        for record in records:
            if record.singer is not None:
                by_singer[f"{record.origin}:singer={record.singer}"].append(record.key)
                by_singer[f"singer={record.singer}"].append(record.key)

        def matches(track_id: str) -> list[str]:
            if track_id in by_key:
                return [track_id]
            return by_bare.get(track_id) or by_singer.get(track_id, [])

        unknown = [t for ids in [*spec.roles.values(), spec.unused] for t in ids if not matches(t)]
        if unknown:
            raise AdvsepError(
                f"{spec.origin}: names track(s) that no --dataset has: "
                f"{_first_of(unknown, 5, ', ', ' and ')} (ids are ORIGIN:TRACK)"
            )
        named: dict[str, list[str]] = defaultdict(list)
        for role, ids in spec.roles.items():
            for track_id in ids:
                for key in matches(track_id):
                    if role not in named[key]:
                        named[key].append(role)
        for track_id in spec.unused:
            for key in matches(track_id):
                named.setdefault(key, [])
        for key in roles_of:
            if key in named:
                roles_of[key] = named[key] or [UNUSED]
            elif "valid" in spec.roles and roles_of[key] == ["valid"]:
                roles_of[key] = ["train"]

        refused = []
        for key, roles in roles_of.items():
            if key in named:
                for role in roles:
                    reason = None if role == UNUSED else role_refusal(by_key[key], role, config)
                    if reason:
                        refused.append(f"{key} cannot be in {role}: {reason}")
        if refused:
            raise AdvsepError(f"{spec.origin}: " + "; ".join(refused))

    check_rules(roles_of, spec.origin if spec else "default split")
    check_singers(records, roles_of, spec.origin if spec else "default split")
    assignment: dict[str, list[TrackRecord]] = {role: [] for role in [*role_order(config), UNUSED]}
    for record in records:
        for role in roles_of[record.key]:
            assignment.setdefault(role, []).append(record)
    return assignment


def check_rules(roles_of: dict[str, list[str]], origin: str) -> None:
    """Paired roles are disjoint; the unpaired pools are disjoint from each other and from
    valid/test."""
    violations = []
    for key, roles in roles_of.items():
        paired = [r for r in roles if r in PAIRED_SPEC_ROLES]
        pools = [r for r in roles if r not in PAIRED_SPEC_ROLES and r != UNUSED]
        if len(paired) > 1:
            violations.append(f"{key} is in {' and '.join(paired)}")
        if len(pools) > 1:
            violations.append(f"{key} feeds two unpaired pools ({' and '.join(pools)})")
        held_out = [r for r in paired if r in HELD_OUT_ROLES]
        if pools and held_out:
            violations.append(f"{key} is in {held_out[0]} and feeds {pools[0]}")
    if violations:
        raise AdvsepError(
            f"{origin}: the unpaired pools must come from tracks disjoint from each other and from "
            f"validation/test, and paired roles must not overlap: "
            f"{_first_of(violations, 10, '; ', '; and ')}"
        )


def _first_of(items: list[str], limit: int, separator: str, before_more: str) -> str:
    """The first `limit` of `items`, joined by `separator`, then `before_more` and a count of the
    rest if any: a message names a few and counts the others."""
    shown = separator.join(items[:limit])
    return shown + (f"{before_more}{len(items) - limit} more" if len(items) > limit else "")


def check_singers(records: list[TrackRecord], roles_of: dict[str, list[str]], origin: str) -> None:
    """A singer with a clip in valid or test sings in no other role (clips left unused aside)."""
    roles_by_singer: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in records:
        if record.singer is not None:
            roles_by_singer[(record.origin, record.singer)].update(
                r for r in roles_of[record.key] if r != UNUSED
            )
    violations = []
    for (dataset, singer), roles in sorted(roles_by_singer.items()):
        held_out = sorted(r for r in roles if r in HELD_OUT_ROLES)
        if held_out and len(roles) > 1:
            others = sorted(roles - {held_out[0]})
            violations.append(
                f"singer {singer} ({dataset}) is in {held_out[0]} and in {', '.join(others)}"
            )
    if violations:
        raise AdvsepError(
            f"{origin}: a singer in validation or test must be in no other role (name all their "
            f"clips with "
            f"ORIGIN:singer=NAME): " + "; ".join(violations)
        )


def spec_content(assignment: dict[str, list[TrackRecord]], config: Config) -> dict:
    """The split spec that reproduces `assignment` (every track named)."""
    content = {}
    for role in PAIRED_SPEC_ROLES + ("mixtures",):
        content[role] = [r.key for r in assignment.get(role, [])]
    content["solo"] = {s: [r.key for r in assignment.get(f"solo/{s}", [])] for s in config.sources}
    content[UNUSED] = [r.key for r in assignment.get(UNUSED, [])]
    return content


SPEC_HEADER = """\
# advsep-tf split spec: which track plays which role. Edit, then run
#   advsep-tf-prepare ... --split {name}
# train/valid/test: paired tracks (mixture + every source); test is held out (never sharded).
# mixtures: unlabelled mixtures; solo/<source>: solo excerpts of that source; unused: left out.
# Rule (the paper's): mixtures and every solo pool come from tracks disjoint from each other and
# from valid/test. Track ids are ORIGIN:TRACK; a track not named here takes its default role.
"""


def write_split(path: str, assignment: dict[str, list[TrackRecord]], config: Config) -> None:
    """Write the spec of `assignment` as YAML (or JSON for a .json path), atomically."""
    import json

    content = spec_content(assignment, config)
    if path.endswith(".json"):
        text = json.dumps(content, indent=2) + "\n"
    else:
        import yaml

        text = SPEC_HEADER.format(name=os.path.basename(path)) + yaml.safe_dump(
            content, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000
        )
    from advsep_tf.files import write_atomically

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, text)
