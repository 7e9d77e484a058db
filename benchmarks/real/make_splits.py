"""Write the split specs of the real-music experiment and of the pretrained model.

Run once from the repository root (the specs it writes are committed beside it):

    python benchmarks/real/make_splits.py ../shared/real

Rules, fixed before any model was trained and never tuned on test scores:
- MIR-1K is split by singer. Test: abjones and annar (85 clips); validation: tammy (8 clips).
- MUSDB18-7 previews: test = the 14 tracks of MUSDB18's official validation list (a list fixed by
  the dataset's authors, not by us); validation = every 14th of the other 80 in name order (6);
  of the remaining 74 in name order, every 4th is paired (19), the others alternate between the
  mixtures pool (28) and the solo pools (vocals 14, accompaniment 13).
- Experiment, paired data scarce: singers Ani, ariel, khair (+ the 19 previews). The paired-data
  curve takes the first 1, 3 or 6 of Ani, ariel, khair, titon, Kenshin, davidson. Unpaired pools,
  the same in every variant: solo vocals = right channels of amy and jmzen, solo accompaniment =
  left channels of leon, mixtures = geniusturtle's clips; each singer feeds one pool only.
- The oracle-supervised ceiling of each experiment split: the same split with the unpaired pools
  (mixtures, solo vocals, solo accompaniment) moved to train, their true stems used.
- Pretrained model: every singer and preview except the test ones trains (validation as above).
- Adaptation (no MIR-1K stems anywhere): the starting model trains on the 74 non-test,
  non-validation previews (validation: the 6 validation previews); it is adapted with the
  mixtures of singers Ani, ariel, khair, titon, Kenshin, davidson, geniusturtle and leon and the
  solo vocals (right channels) of amy and jmzen; it is tested on the test singers as above.
"""

import os
import sys

import yaml

TEST_SINGERS = ["abjones", "annar"]
VALID_SINGERS = ["tammy"]
PAIRED_ORDER = ["Ani", "ariel", "khair", "titon", "Kenshin", "davidson"]
POOLS = {
    "solo_vocals": ["amy", "jmzen"],
    "solo_accompaniment": ["leon"],
    "mixtures": ["geniusturtle"],
}
MUSDB_VALIDATION = [  # musdb's official validation tracks (musdb/configs/mus.yaml)
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
]
HEADER = "# Written by benchmarks/real/make_splits.py (its docstring gives the rules). {what}\n"


def singers(names):
    return [f"mir1k:singer={n}" for n in names]


def previews(names):
    return [f"musdb18:{n}" for n in names]


def main(real_dir: str) -> None:
    tracks = sorted(
        n[: -len(".stem.mp4")]
        for n in os.listdir(os.path.join(real_dir, "musdb18_7", "train"))
        if n.endswith(".stem.mp4")
    )
    test = [t for t in tracks if t in MUSDB_VALIDATION]
    rest = [t for t in tracks if t not in MUSDB_VALIDATION]
    valid = rest[::14][:6]
    rest = [t for t in rest if t not in valid]
    paired = rest[::4]
    others = [t for t in rest if t not in paired]
    mixtures, solo = others[0::2], others[1::2]
    solo_vocals, solo_accompaniment = solo[0::2], solo[1::2]
    here = os.path.dirname(os.path.abspath(__file__))
    all_singers = [
        *TEST_SINGERS,
        *VALID_SINGERS,
        *PAIRED_ORDER,
        *[s for v in POOLS.values() for s in v],
    ]
    held_out = {
        "test": singers(TEST_SINGERS) + previews(test),
        "valid": singers(VALID_SINGERS) + previews(valid),
    }
    for count in (1, 3, 6):
        spec = {
            **held_out,
            "train": singers(PAIRED_ORDER[:count]) + previews(paired),
            "mixtures": singers(POOLS["mixtures"]) + previews(mixtures),
            "solo": {
                "vocals": singers(POOLS["solo_vocals"]) + previews(solo_vocals),
                "accompaniment": singers(POOLS["solo_accompaniment"])
                + previews(solo_accompaniment),
            },
            "unused": singers(PAIRED_ORDER[count:]),
        }
        write(
            os.path.join(here, f"split_paired{count}.yaml"),
            spec,
            f"Experiment: {count} paired singer(s) + {len(paired)} previews; fixed unpaired pools.",
        )
        pools = spec["mixtures"] + spec["solo"]["vocals"] + spec["solo"]["accompaniment"]
        write(
            os.path.join(here, f"split_paired{count}_ceiling.yaml"),
            {
                **spec,
                "train": spec["train"] + pools,
                "mixtures": [],
                "solo": {"vocals": [], "accompaniment": []},
            },
            f"The oracle-supervised ceiling of split_paired{count}.yaml: its unpaired pools as "
            f"paired data.",
        )
    non_test = paired + mixtures + solo_vocals + solo_accompaniment
    write(
        os.path.join(here, "split_adapt_source.yaml"),
        {
            "train": previews(non_test),
            "valid": previews(valid),
            "test": singers(TEST_SINGERS) + previews(test),
            "unused": singers([s for s in all_singers if s not in TEST_SINGERS]),
        },
        "Adaptation, the starting model: MUSDB18 previews only.",
    )
    write(
        os.path.join(here, "split_adapt_target.yaml"),
        {
            "train": [],
            "valid": [],
            "test": singers(TEST_SINGERS),
            "mixtures": singers(PAIRED_ORDER + POOLS["mixtures"] + POOLS["solo_accompaniment"]),
            "solo": {"vocals": singers(POOLS["solo_vocals"]), "accompaniment": []},
            "unused": singers(VALID_SINGERS) + previews(tracks),
        },
        "Adaptation to MIR-1K: its mixtures and solo vocals only, no stems.",
    )
    pretrained_train = [s for s in all_singers if s not in TEST_SINGERS + VALID_SINGERS]
    write(
        os.path.join(here, "split_pretrained.yaml"),
        {
            **held_out,
            "train": singers(pretrained_train)
            + previews(paired + mixtures + solo_vocals + solo_accompaniment),
            "mixtures": [],
            "solo": {"vocals": [], "accompaniment": []},
        },
        "Pretrained model: everything but the test singers and previews trains.",
    )


def write(path, spec, what):
    with open(path, "w") as f:
        f.write(
            HEADER.format(what=what)
            + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=1000)
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/real")
