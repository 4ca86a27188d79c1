"""Every module of the package imports on its own, in a fresh interpreter.

An import cycle between two modules shows up here as an ImportError for whichever is imported
first. The modules are imported in batches, one fresh interpreter per batch, with none of
BONSAI's modules loaded before each one, so that the whole package takes seconds, not minutes.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import bonsai

# ``python -m`` entry points run a command when imported.
ENTRY_POINTS = {"bonsai.__main__", "bonsai.train.__main__"}
BATCHES = 4

CHILD = r"""
import importlib, json, sys, traceback
names = json.loads(sys.argv[1])
failed = {}
for name in names:
    # Third-party modules stay loaded (some cannot load twice); BONSAI's start afresh.
    for loaded in [m for m in sys.modules if m == "bonsai" or m.startswith("bonsai.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=4)
print(json.dumps(failed))
"""


def all_modules() -> list[str]:
    found = ["bonsai"]
    for info in pkgutil.walk_packages(bonsai.__path__, "bonsai."):
        if info.name not in ENTRY_POINTS and not info.name.endswith(".__main__"):
            found.append(info.name)
    return sorted(found)


def test_the_package_has_many_modules() -> None:
    modules = all_modules()
    assert len(modules) > 100
    assert "bonsai.runs" in modules and "bonsai.layouts" in modules


def test_every_module_imports_alone() -> None:
    modules = all_modules()
    batches = [modules[i::BATCHES] for i in range(BATCHES)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(batch)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for batch in batches
    ]
    failed: dict[str, str] = {}
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        failed.update(json.loads(out.strip().splitlines()[-1]))
    assert not failed, "\n".join(f"{name}:\n{trace}" for name, trace in failed.items())


def imported_by(package: str) -> set[str]:
    """Every ``bonsai`` module the modules of ``package`` import, at the top or inside a
    function (a lazy import still ties the two together)."""
    import ast
    from pathlib import Path

    root = Path(bonsai.__file__).parent
    path = root.joinpath(*package.split(".")[1:])
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    names: set[str] = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("bonsai.")}


def reaches(importer: str, target: str) -> bool:
    return any(name == target or name.startswith(target + ".") for name in imported_by(importer))


def test_the_stages_below_do_not_import_the_ones_above() -> None:
    # Runs and layouts sit below train and generate; generate never reaches up into train.
    for low in ("bonsai.runs", "bonsai.layouts"):
        for high in ("bonsai.train", "bonsai.generate", "bonsai.evaluate", "bonsai.chat"):
            assert not reaches(low, high), (low, high)
    assert not reaches("bonsai.generate", "bonsai.train")
    assert not reaches("bonsai.student", "bonsai.train")
    assert not reaches("bonsai.student", "bonsai.generate")
    # The two decoders share transformers' quirks through a third module, not each other.
    assert not reaches("bonsai.generate.gemma_step", "bonsai.generate.engine")
