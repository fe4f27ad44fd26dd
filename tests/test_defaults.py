"""Defaults defined once: the validation share of deeprc split and deeprc train --all is
deeprc.split.VALIDATION_FRACTION, read by the command line without loading the libraries the
split needs."""

from __future__ import annotations

import inspect
import subprocess
import sys

from deeprc import split
from deeprc.cli import build_parser


def test_the_validation_fraction_is_one_constant():
    parser = build_parser()
    for command in (
        ["split", "--store", "s", "--out", "f"],
        ["train", "--store", "s", "--all", "--out", "m"],
    ):
        args, _ = parser.parse_known_args(command)
        assert args.validation_fraction == split.VALIDATION_FRACTION
    for function in (split.final_split, split.make_folds, split.fixed_split, split.split_store):
        default = inspect.signature(function).parameters["validation_fraction"].default
        assert default == split.VALIDATION_FRACTION, function.__name__


def test_the_command_line_starts_without_the_heavy_libraries():
    """deeprc --help, and every command before its work, loads neither scikit-learn nor
    pandas, NumPy or PyTorch (each command imports what it needs when it runs)."""
    code = (
        "import sys, deeprc.cli; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'sklearn', 'pandas', 'numpy', 'pyarrow', 'torch'}))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
