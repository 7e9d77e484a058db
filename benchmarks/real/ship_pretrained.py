"""Copy a trained run's separator into the package as the `pretrained` model.

    python benchmarks/real/ship_pretrained.py RUN_DIR

Writes advsep_tf/pretrained/model.keras (the separator's weights only: no optimizer state, no
critics) and config.json, each under a temporary name first. The model card beside them
(MODEL_CARD.md) is written by hand from benchmarks/real/evaluate_pretrained.py's output.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TARGET = os.path.join(HERE, "..", "..", "advsep_tf", "pretrained")


def main(run_dir: str) -> None:
    import advsep_tf  # noqa: F401
    from advsep_tf.model import AdversarialSeparator
    from advsep_tf.runs import load_run_model

    trained = load_run_model(run_dir)
    config = trained.separation_config.replace(training={"mode": "supervised", "critics": []})
    shipped = AdversarialSeparator(config)
    shipped.separator.set_weights(trained.separator.get_weights())
    os.makedirs(TARGET, exist_ok=True)
    model_path = os.path.join(TARGET, "model.keras")
    tmp = os.path.join(TARGET, "model.tmp.keras")
    try:
        shipped.save(tmp)
        os.replace(tmp, model_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    config.save(os.path.join(TARGET, "config.json"))  # atomic itself
    print(f"{model_path}: {os.path.getsize(model_path) / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
