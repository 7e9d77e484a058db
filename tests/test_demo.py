import os

from advsep_tf.config import load_config
from advsep_tf.demo import run_demo


def test_quick_demo_trains_the_three_models_and_compares_them(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(str(out), quick=True, config=load_config("tiny"), progress=False)
    assert set(result["results"]) == {"baseline", "adversarial", "synthetic", "oracle"}
    assert result["training"]["baseline"]["critic_steps"] == 0
    assert result["training"]["adversarial"]["critic_steps"] > 0
    assert result["training"]["synthetic"]["critic_steps"] == 0
    # The same budget: every model takes the same number of separator steps.
    assert (
        len(
            {
                result["training"][n]["separator_steps"]
                for n in ("baseline", "adversarial", "synthetic")
            }
        )
        == 1
    )
    for name, evaluation in result["results"].items():
        assert sorted(evaluation.sources) == ["accompaniment", "vocals"]
        assert len(evaluation.tracks) == 2
        assert os.path.isfile(out / "results" / name / "results.json")
    table = result["table"]
    for column in ("baseline SDR", "adversarial SDR", "synthetic SDR", "oracle SDR"):
        assert column in table
    assert "vocals" in table
    report = (out / "comparison.md").read_text()
    assert table in report and "Wall time" in report
    assert (out / "training_curves.png").stat().st_size > 1000
    # One folder per test song (the hidden file is the separation record of --overwrite).
    stems = sorted(
        n for n in os.listdir(out / "separated" / "adversarial") if not n.startswith(".")
    )
    assert len(stems) == 2
