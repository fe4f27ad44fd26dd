"""deeprc: immune repertoire classification with modern-Hopfield attention pooling."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deeprc")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
