"""The package's house rules: imports run downward only, and only the fake-server command imports `testing`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import box_sessions

PACKAGE = Path(box_sessions.__file__).parent

#: Layers from the bottom: a module may import its own layer and those below, never above.
LAYERS: dict[str, int] = {
    "_version": 0,
    "_errors": 0,
    "_clock": 0,
    "_validation": 0,
    "_json": 0,
    "_tasks": 0,
    "_redact": 0,
    "_telemetry": 0,  # OpenTelemetry hooks, for every layer that reports
    "_http": 0,  # the HTTP stack, httpx2 or httpx, for every layer
    "_shared": 0,  # the port of state shared across processes, for every layer
    "_auth": 1,
    "_pacing": 1,  # the rate limit and cool-down, over a state one process or many keep
    "_sending": 2,
    "_termination": 3,
    "_client": 4,
    "__init__": 5,  # the package root only re-exports
    "testing": 5,  # beside the command line, above the client
    "redis": 5,  # a public integration: builds on the core's protocols
    "_cli": 6,
    "__main__": 7,
}
#: The one production module allowed to import `box_sessions.testing` (besides `testing` itself).
TESTING_IMPORTER = "box_sessions._cli._fake"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every box_sessions module ``name`` imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    package = name.split(".") if is_package else name.split(".")[:-1]
    result: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            result.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            result.add(target)
            result.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in result if m == "box_sessions" or m.startswith("box_sessions.")}


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[top]


def _real_modules(imported: set[str], modules: dict[str, Path]) -> set[str]:
    # `from .x import Name` adds "pkg.x.Name": keep only names that are modules.
    return {m for m in imported if m in modules}


MODULES = _modules()


def test_every_module_has_a_layer() -> None:
    """Every folder and base module of the package is placed in a layer."""
    missing = {name for name in MODULES if [*name.split("."), "__init__"][1] not in LAYERS}
    assert missing == set()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_downward(name: str) -> None:
    """A module imports only modules of its own layer or below."""
    upward = {
        target for target in _real_modules(_imports(name, MODULES[name]), MODULES) if _layer(target) > _layer(name)
    }
    assert upward == set(), f"{name} imports upward: {sorted(upward)}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("box_sessions.testing")))
def test_only_the_fake_server_command_imports_testing(name: str) -> None:
    """Production code does not import `box_sessions.testing`, except the fake-server and demo commands."""
    imports_testing = any(t.startswith("box_sessions.testing") for t in _imports(name, MODULES[name]))
    assert not imports_testing or name == TESTING_IMPORTER


def test_the_walker_sees_an_upward_import(tmp_path: Path) -> None:
    """The walker resolves relative imports: an auth module importing the client is caught as upward."""
    module = tmp_path / "bad.py"
    module.write_text("from .._client import BoxClient\nfrom . import _cache\n", encoding="utf-8")
    imported = _imports("box_sessions._auth.bad", module)
    assert {"box_sessions._client", "box_sessions._auth"} <= imported
    assert _layer("box_sessions._client") > _layer("box_sessions._auth.bad")


def test_no_module_is_over_about_350_lines() -> None:
    """One idea per module: none grows past about 350 lines."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 370}
    assert long == {}


def _private_imports(name: str, path: Path) -> set[str]:
    """What ``name`` imports from the core that is not public: a private module, or a name not in ``__all__``."""
    found = set()
    for target in _imports(name, path):
        if target.startswith("box_sessions.redis"):
            continue  # its own modules
        if target == "box_sessions":
            continue
        module, _, attribute = target.rpartition(".")
        if module == "box_sessions" and attribute in box_sessions.__all__:
            continue
        found.add(target)
    return found


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("box_sessions.redis")))
def test_the_redis_share_uses_only_public_names_of_the_core(name: str) -> None:
    """`box_sessions.redis` is written as a third party would write a store: against names `box_sessions` exports."""
    assert _private_imports(name, MODULES[name]) == set()


def test_the_public_name_check_sees_a_private_import(tmp_path: Path) -> None:
    """A store module reaching into a private module of the core, or a name not exported, is caught."""
    module = tmp_path / "bad.py"
    module.write_text(
        "from .._pacing import Pacer\nfrom .. import SharedStateError, _sending\nfrom . import _calls\n",
        encoding="utf-8",
    )
    assert _private_imports("box_sessions.redis.bad", module) == {
        "box_sessions._pacing",
        "box_sessions._pacing.Pacer",
        "box_sessions._sending",
    }


def test_no_class_is_over_about_200_lines() -> None:
    """A class that reads top to bottom: none grows past about 200 lines (220, for a docstring's slack)."""
    classes = [
        (f"{name}.{node.name}", (node.end_lineno or node.lineno) - node.lineno + 1)
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    assert {name: size for name, size in classes if size > 220} == {}
