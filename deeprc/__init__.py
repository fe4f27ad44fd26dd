"""deeprc: immune repertoire classification with modern-Hopfield attention pooling.

The Python API (what the ``deeprc`` command and the workflow call)::

    from deeprc import Experiment, RepertoireClassifier, Store

The names are imported on first use, so that ``import deeprc`` (and the command line's start)
stays light. Stages that share their module's name stay there: ``deeprc.ingest.ingest``,
``deeprc.simulate.simulate``.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deeprc")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

# public name -> the module that defines it
_API = {
    "Experiment": "deeprc.experiment",
    "TrainConfig": "deeprc.experiment",
    "ModelConfig": "deeprc.model",
    "RepertoireClassifier": "deeprc.classifier",
    "Store": "deeprc.store",
    "read_folds": "deeprc.split",
    "final_split": "deeprc.split",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'deeprc' has no attribute {name!r}")
