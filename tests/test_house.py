"""The rules of the house, read from the source with `ast`: one folder per concern, arrows pointing down.

Every import counts, at module level, inside a function or under `TYPE_CHECKING`:
a type a lower floor needs belongs on that floor. `house_problems` is also run on a
small tree with planted faults, so that a rule which stopped seeing anything would fail.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tbimg_cli"
CONCERNS = ("cli", "events", "images", "confusion", "tutorial", "logs", "serve", "lightning")
ROOT_MODULES = {"__init__", "__main__", "errors", "shortcuts", "words"}
MAX_MODULES_PER_FOLDER = 8
MAX_MODULE_LINES = 500
TENSORFLOW = ("tensorflow", "keras", "tf_keras")
# Which concerns may import TensorFlow or Keras: the tutorial, and the one Keras callback module.
TENSORFLOW_ALLOWED = ("tutorial", "confusion/keras_callback.py")
# Concern -> concerns it must never import (besides `cli`, which nothing imports).
FORBIDDEN = {
    "events": set(CONCERNS) - {"events"},
    "logs": {"tutorial", "confusion"},
    "images": {"tutorial", "confusion"},
    "lightning": {"tutorial", "logs", "serve"},
}


def _imports(tree: ast.AST, package: str, module: str) -> list[str]:
    """Every absolute module name a file imports, relative imports resolved against `module`."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            names.append(prefix)
            # `from tbimg_cli.events import storage` imports the module tbimg_cli.events.storage
            names += [f"{prefix}.{alias.name}" for alias in node.names if prefix.startswith(package)]
    return names


def _concern(relative: Path) -> str:
    """'events' for events/writer.py; 'root' for the package's own modules."""
    return relative.parts[0] if len(relative.parts) > 1 else "root"


def _target_concern(name: str, package: str, concerns: tuple[str, ...]) -> str | None:
    parts = name.split(".")
    if parts[0] != package:
        return None
    if len(parts) > 1 and parts[1] in concerns:
        return parts[1]
    return "root"


def house_problems(package_dir: Path, concerns: tuple[str, ...] = CONCERNS) -> list[str]:
    """Every broken rule of the house in the package at `package_dir`, one sentence each."""
    package = package_dir.name
    problems = []
    edges: dict[str, set[str]] = {concern: set() for concern in concerns}
    for folder in [package_dir, *(package_dir / c for c in concerns)]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        if len(modules) > MAX_MODULES_PER_FOLDER:
            problems.append(f"{folder.name}/ holds {len(modules)} modules (at most {MAX_MODULES_PER_FOLDER})")
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            problems.append(f"{relative} has {lines} lines (at most {MAX_MODULE_LINES})")
        if len(relative.parts) > 2 or (len(relative.parts) == 2 and relative.parts[0] not in concerns):
            problems.append(f"{relative} is in no concern's folder")
            continue
        if len(relative.parts) == 1 and relative.stem not in ROOT_MODULES:
            problems.append(f"{relative} lies at the root, which holds only {sorted(ROOT_MODULES)}")
        source = _concern(relative)
        module = ".".join([package, *relative.with_suffix("").parts])
        for name in _imports(ast.parse(text), package, module):
            top = name.split(".")[0]
            if top in TENSORFLOW and not any(relative.as_posix().startswith(allowed) for allowed in TENSORFLOW_ALLOWED):
                problems.append(f"{relative} imports {name}: only tutorial/ and the Keras callback may")
            target = _target_concern(name, package, concerns)
            if target is None or target == source:
                continue
            if target == "cli" and relative.as_posix() != "__main__.py":
                problems.append(f"{relative} imports {name}: nothing imports the face (cli/)")
            elif target in FORBIDDEN.get(source, ()):
                problems.append(f"{relative} imports {name}: {source}/ may not import {target}/")
            elif source == "root" and relative.stem not in ("__init__", "__main__") and target != "root":
                problems.append(f"{relative} imports {name}: the root's own modules import no concern")
            if source in edges and target in edges:
                edges[source].add(target)
    problems += _circles(edges)
    return problems


def _circles(edges: dict[str, set[str]]) -> list[str]:
    """An import circle between folders, as 'a/ -> b/ -> a/', for each folder that reaches itself."""
    found = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges[node]:
                if nxt == start:
                    found.append("import circle: " + " -> ".join(f"{p}/" for p in [*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return sorted(set(found))


def test_the_package_keeps_the_rules_of_the_house():
    assert house_problems(PACKAGE) == []


def test_every_concern_says_in_its_init_what_lives_there():
    for concern in CONCERNS:
        docstring = ast.get_docstring(ast.parse((PACKAGE / concern / "__init__.py").read_text(encoding="utf-8")))
        assert docstring and "import" in docstring, f"{concern}/__init__.py: say what lives there and may import"


def _plant(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for concern in CONCERNS:
        (package / concern).mkdir(parents=True)
        (package / concern / "__init__.py").write_text('"""x"""\n')
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    return package


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"events/writer.py": "from pkg.images import values\n"}, "events/ may not import images/"),
        (
            {"events/writer.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.logs import x\n"},
            "events/ may not import logs/",
        ),
        ({"logs/readback.py": "def f():\n    from pkg.tutorial import data\n"}, "logs/ may not import tutorial/"),
        ({"images/values.py": "from pkg.confusion.labels import evaluate\n"}, "images/ may not import confusion/"),
        ({"serve/tensorboard.py": "from pkg.cli import output\n"}, "nothing imports the face"),
        ({"logs/export.py": "import tensorflow as tf\n"}, "only tutorial/ and the Keras callback may"),
        ({"confusion/matrix.py": "from keras import layers\n"}, "only tutorial/ and the Keras callback may"),
        ({"errors.py": "from pkg.events import writer\n"}, "the root's own modules import no concern"),
        ({"helpers.py": ""}, "lies at the root"),
        (
            {"serve/a.py": "from pkg.tutorial import b\n", "tutorial/b.py": "from pkg.serve import a\n"},
            "import circle",
        ),
        ({"logs/big.py": "x = 1\n" * (MAX_MODULE_LINES + 1)}, "lines (at most"),
        ({f"images/m{i}.py": "" for i in range(MAX_MODULES_PER_FOLDER + 1)}, "modules (at most"),
    ],
)
def test_house_rules_see_a_planted_fault(tmp_path, files, expected):
    problems = house_problems(_plant(tmp_path, files))
    assert any(expected in problem for problem in problems), problems


def test_house_rules_pass_a_tree_that_keeps_them(tmp_path):
    files = {
        "tutorial/train.py": "import tensorflow\nfrom pkg.confusion import matrix\nfrom pkg.logs import inspection\n",
        "confusion/keras_callback.py": "import keras\nfrom pkg.events.writer import run_folder\n",
        "cli/app.py": "from pkg.tutorial import train\nfrom pkg.serve import tensorboard\n",
        "__main__.py": "from pkg.cli import main\n",
    }
    assert house_problems(_plant(tmp_path, files)) == []


def test_folders_are_the_concerns_and_no_more():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == set(CONCERNS)
    assert not list(itertools.chain.from_iterable(PACKAGE.glob(f"{c}/*/*.py") for c in CONCERNS))
