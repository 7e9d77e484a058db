"""advsep-tf packaging: data_pipelines/ and export/ install inside the advsep_tf namespace."""

from setuptools import setup

setup(
    package_dir={
        "advsep_tf": "advsep_tf",
        "advsep_tf.data_pipelines": "data_pipelines",
        "advsep_tf.export": "export",
    },
    packages=["advsep_tf", "advsep_tf.cli", "advsep_tf.data_pipelines", "advsep_tf.export"],
)
