"""The floors of the package, checked from the imports themselves: the network stands on no
features, data or store; the baselines and the features stand on no network."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import deeprc

PACKAGE = Path(__file__).parents[1] / "deeprc"

ABOVE_ALL = ("deeprc.cli", "deeprc.predict", "deeprc.interpret", "deeprc.evaluate",
             "deeprc.report", "deeprc.classifier")  # fmt: skip
# modules under a path -> deeprc modules they must not import (a name and everything under it)
RULES = {
    "model": (*ABOVE_ALL, "deeprc.features", "deeprc.baselines", "deeprc.data", "deeprc.store",
              "deeprc.train", "deeprc.experiment", "deeprc.model_file", "deeprc.ingest"),
    "features": (*ABOVE_ALL, "deeprc.model", "deeprc.baselines", "deeprc.data", "deeprc.train",
                 "deeprc.experiment", "deeprc.model_file"),
    "baselines.py": (*ABOVE_ALL, "deeprc.model", "deeprc.data", "deeprc.train"),
    "data.py": (*ABOVE_ALL, "deeprc.model", "deeprc.features", "deeprc.train"),
    "train.py": ABOVE_ALL,
    "model_file.py": (*ABOVE_ALL, "deeprc.model", "deeprc.features", "deeprc.train"),
}  # fmt: skip


def deeprc_imports(path: Path) -> set[str]:
    """Every deeprc module a file imports, wherever in the file (lazy and relative imports
    included; ``from deeprc import X`` counts as the module the package exports X from)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("deeprc")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: from the file's package up
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            if module.startswith("deeprc"):
                found |= {module} | {f"{module}.{a.name}" for a in node.names}
                if module == "deeprc":
                    found |= {deeprc._API[a.name] for a in node.names if a.name in deeprc._API}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            found |= {a.value for a in node.args if isinstance(a, ast.Constant)}
    return found


def files(where: str) -> list[Path]:
    path = PACKAGE / where
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


@pytest.mark.parametrize("where", sorted(RULES))
def test_each_floor_imports_only_what_stands_below_it(where):
    forbidden = RULES[where]
    for path in files(where):
        broken = sorted(
            name for name in deeprc_imports(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)
        )  # fmt: skip
        assert not broken, f"{path.relative_to(PACKAGE.parent)} imports {broken}"


def test_the_rules_read_real_imports():
    """The checker sees what the modules import (else the rules above would pass vacuously)."""
    assert "deeprc.features.evidence" in deeprc_imports(PACKAGE / "features" / "featureset.py")
    assert "deeprc.model" in deeprc_imports(PACKAGE / "classifier.py")


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("deeprc.model", ("deeprc.features", "deeprc.store", "deeprc.baselines", "sklearn")),
        ("deeprc.baselines", ("deeprc.model", "deeprc.classifier", "torch")),
        ("deeprc.features", ("deeprc.model", "deeprc.baselines", "torch")),
    ],
)
def test_importing_a_floor_loads_nothing_above_it(module, absent):
    code = (
        f"import sys, {module}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('deeprc', 'sklearn', 'torch')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    for name in absent:
        assert f"'{name}'" not in loaded and f"'{name}." not in loaded, (module, name, loaded)
