"""The layering of neuralign: every import follows the arrows of the data flow, no cycles.

Every module under ``neuralign/`` is parsed (not imported): module-level imports, imports
inside functions, and strings naming a module (``importlib`` registries such as
``"neuralign.offline.things_eeg2:load_things_eeg2"``) all count. The parts and their arrows
(docs/architecture.md)::

    ground   (errors, lsl, io, base, the package root)   -> nothing but the ground
    align    -> ground                  models   -> ground
    realtime -> align, models, ground   offline  -> align, models, ground
    stimulus -> ground                  sim      -> align, models, ground
    report   -> align, ground           app      -> realtime, align, models, report, ground
    api      -> commands, realtime, offline, align, models, report, ground
    commands, cli (and ``python -m neuralign``) -> anything

The package root is ground, except that it names ``neuralign.api`` for its lazy (PEP 562)
top-level names: ``import neuralign`` loads nothing else.

Nothing but ``commands`` and ``cli`` imports ``sim``. A registry that must name modules of
several parts (dataset kinds, commands) therefore lives in ``commands``.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "neuralign"

GROUND = "ground"
#: part -> the parts it may import (besides itself).
ARROWS: dict[str, set[str]] = {
    GROUND: set(),
    "align": {GROUND},
    "models": {GROUND},
    "realtime": {"align", "models", GROUND},
    "offline": {"align", "models", GROUND},
    "stimulus": {GROUND},
    "sim": {"align", "models", GROUND},
    "report": {"align", GROUND},
    "app": {"realtime", "align", "models", "report", GROUND},
    "api": {"commands", "realtime", "offline", "align", "models", "report", GROUND},
    "commands": {"*"},
    "cli": {"*"},
}
#: Parts the package root may name: the top-level API, loaded on first use (PEP 562).
ROOT_MAY_NAME = {"api"}
GROUND_MODULES = {"errors", "lsl", "io", "base"}

#: Violations other engineers are removing, each with who and why. The test fails on any
#: violation not listed here, and on a listed one that no longer occurs (then delete it).
PENDING: dict[tuple[str, str], str] = {}

_MODULE_STRING = re.compile(r"neuralign(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")


def module_name(path: Path, root: Path) -> str:
    """``neuralign/app/window.py`` -> ``neuralign.app.window`` (packages without __init__)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part_of(module: str) -> str:
    """The part a module belongs to (see the module docstring)."""
    names = module.split(".")
    if len(names) == 1:
        return GROUND  # the package root (__version__)
    if names[1] == "__main__":
        return "cli"  # `python -m neuralign` is the command
    return GROUND if names[1] in GROUND_MODULES else names[1]


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path, root: Path, known: set[str]) -> list[tuple[str, int, str]]:
    """Every neuralign module ``path`` imports: ``(module, line, how)``.

    ``how`` is ``"import"`` (module level), ``"function"`` (inside a function or class) or
    ``"string"`` (a string naming a module). ``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module, else ``pkg``.
    """
    module = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = {id(n) for n in tree.body}
    for n in tree.body:  # `if TYPE_CHECKING:` blocks and the like are module level too
        if isinstance(n, ast.If | ast.Try):
            top.update(id(c) for c in ast.walk(n))
    found: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        how = "import" if id(node) in top else "function"
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, how) for a in node.names
                      if a.name.split(".")[0] == "neuralign"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            if target.split(".")[0] != "neuralign":
                continue
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if sub in known else target, node.lineno, how))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and _MODULE_STRING.fullmatch(node.value)):
            found.append((node.value.split(":")[0], node.lineno, "string"))
    return found


def import_graph(root: Path) -> dict[str, list[tuple[str, int, str]]]:
    """``module -> [(imported module, line, how)]`` for every module under ``root``."""
    files = sorted(root.rglob("*.py"))
    known = {module_name(p, root) for p in files}
    return {module_name(p, root): imports_of(p, root, known) for p in files}


def arrow_violations(graph: dict[str, list[tuple[str, int, str]]]) -> list[tuple[str, str, str]]:
    """``(module, imported module, message)`` for every import against the arrows."""
    out = []
    for module, targets in graph.items():
        src = part_of(module)
        allowed = ARROWS.get(src, set())
        for target, line, how in targets:
            dst = part_of(target)
            if dst == src or "*" in allowed or dst in allowed:
                continue
            if module == "neuralign" and dst in ROOT_MAY_NAME:
                continue
            out.append((module, target, f"{module}:{line} ({how}) imports {target}: "
                                        f"{src} -> {dst} is not an arrow"))
    return out


def cycles(graph: dict[str, list[tuple[str, int, str]]]) -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan), each sorted."""
    edges = defaultdict(set)
    for module, targets in graph.items():
        edges[module].update(t for t, _, _ in targets if t in graph and t != module)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_imports_follow_the_arrows():
    graph = import_graph(ROOT)
    found = arrow_violations(graph)
    new = [msg for mod, tgt, msg in found if (mod, tgt) not in PENDING]
    assert not new, "imports against the layering:\n" + "\n".join(new)
    stale = sorted(set(PENDING) - {(mod, tgt) for mod, tgt, _ in found})
    assert not stale, f"fixed, remove from PENDING: {stale}"


def test_no_import_cycles():
    assert cycles(import_graph(ROOT)) == []


def test_only_commands_import_sim():
    graph = import_graph(ROOT)
    users = sorted({m for m, targets in graph.items() for t, _, _ in targets
                    if part_of(t) == "sim" and part_of(m) not in ("sim", "commands", "cli")})
    assert users == []


def test_every_part_is_known():
    parts = {part_of(m) for m in import_graph(ROOT)}
    assert parts <= set(ARROWS), f"parts without arrows: {parts - set(ARROWS)}"


@pytest.fixture
def synthetic(tmp_path):
    """A tiny tree with today's kinds of violations (the issue's list) planted in it."""
    pkg = tmp_path / "neuralign"
    files = {
        "__init__.py": "",
        "errors.py": "",
        "io/__init__.py": "",
        "io/features.py": "import importlib\n\n"
                          "def load():\n    return importlib.import_module('neuralign.models.cache')\n",
        "models/__init__.py": "",
        "models/cache.py": "from ..errors import x\n",
        "stimulus/__init__.py": "",
        "stimulus/orchestrate.py": "def run():\n    from ..commands.present import xvfb\n",
        "commands/__init__.py": "",
        "commands/present.py": "from ..stimulus import orchestrate\n",
        "realtime/__init__.py": "",
        "realtime/recording.py": "from ..offline.datasets import EpochData\n",
        "offline/__init__.py": "",
        "offline/datasets.py": "LOADERS = {'rec': 'neuralign.realtime.recording:load'}\n",
        "offline/study.py": "from ..sim.dataset import write\n",
        "sim/__init__.py": "",
        "sim/dataset.py": "from ..offline.datasets import EpochData\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    return pkg


def test_the_checks_catch_todays_violations(synthetic):
    """The checks find module-level, function-level and string imports, and cycles."""
    graph = import_graph(synthetic)
    found = {(m, t) for m, t, _ in arrow_violations(graph)}
    assert ("neuralign.io.features", "neuralign.models.cache") in found  # importlib string
    assert ("neuralign.stimulus.orchestrate", "neuralign.commands.present") in found  # function
    assert ("neuralign.realtime.recording", "neuralign.offline.datasets") in found
    assert ("neuralign.offline.datasets", "neuralign.realtime.recording") in found
    assert ("neuralign.offline.study", "neuralign.sim.dataset") in found
    assert ("neuralign.sim.dataset", "neuralign.offline.datasets") in found
    assert ("neuralign.commands.present", "neuralign.stimulus.orchestrate") not in found
    groups = cycles(graph)
    assert ["neuralign.offline.datasets", "neuralign.realtime.recording"] in groups
    assert ["neuralign.commands.present", "neuralign.stimulus.orchestrate"] in groups
    with pytest.raises(AssertionError):
        assert not arrow_violations(graph)
