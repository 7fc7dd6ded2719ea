"""The layout as the design says: no import cycles, imports running downward, and optional
parts (the emulator, pytest) out of the core.

Every import statement counts, at module level or inside a function (a lazy import only
hides a cycle), except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("calcache", "flags")

# Lower layers first. A module belongs to the longest prefix listed; it may import only
# modules of its own layer or below (calcache.exceptions etc. are the floor).
LAYERS: list[tuple[str, ...]] = [
    (
        "calcache.conf",
        "calcache.exceptions",
        "calcache.intervals",
        "calcache._lazy",
        "calcache.extras",
        "calcache.signals",
        "calcache.metrics",
        "flags",
    ),
    ("calcache.accounts.crypto", "calcache.checks"),
    ("calcache.models",),
    ("calcache.google",),
    ("calcache.sync", "calcache.availability", "calcache.push"),
    ("calcache.rollout",),
    ("calcache.metrics.collectors",),
    ("calcache.background",),
    ("calcache.push.notifications", "calcache.accounts"),
    ("calcache.tasks",),
    ("calcache.services", "calcache.selectors"),
    ("calcache.views", "calcache.management", "calcache.admin"),
    ("calcache.urls",),
    ("calcache.apps",),
]
# The upward imports the design accepts, each for a reason the package docstring gives.
ALLOWED_UPWARD = {
    # get_availability samples its answers for the shadow comparison and hands them to
    # the background runner, which compares them outside the request.
    ("calcache.availability.answer", "calcache.rollout.shadow"),
    ("calcache.availability.answer", "calcache.background.runners"),
    # The Celery runner sends the tasks that run the jobs.
    ("calcache.background.runners", "calcache.tasks"),
}
# Optional parts and their own world: checked separately below.
SEPARATE = ("calcache.emulator", "calcache.migrations", "flags.migrations")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


MODULES = {module_name(path): path for path in source_files()}


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def _resolve(name: str) -> str | None:
    """The module of ours that ``name`` names, or its closest package."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from calcache.sync import engine`` imports the module calcache.sync.engine
            names = [f"{node.module}.{alias.name}" for alias in node.names] or [node.module]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    found |= _facade_targets(tree)
    return found


def _facade_targets(tree: ast.Module) -> set[str]:
    """The modules a lazy facade (``FACADE = {"name": "module", ...}``) loads names from."""
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["FACADE"]
            and isinstance(node.value, ast.Dict)
        ):
            return {ast.literal_eval(value) for value in node.value.values if value is not None}
    return set()


GRAPH = {module: imports_of(module) for module in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for layer, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def test_the_import_graph_was_read() -> None:
    assert "calcache.availability.answer" in GRAPH
    assert "calcache.availability.sql" in GRAPH["calcache.availability.answer"]
    # a lazy import inside a function counts too
    assert "flags.models" in GRAPH["flags"]
    # so does a name a lazy facade loads
    assert "calcache.accounts.connection" in GRAPH["calcache.services"]


def test_no_import_cycles() -> None:
    assert strongly_connected(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_every_module_has_a_layer() -> None:
    unplaced = [
        module
        for module in MODULES
        if not module.startswith(SEPARATE) and module != "calcache" and layer_of(module) is None
    ]
    assert unplaced == []


def test_imports_run_downward() -> None:
    upward = []
    for module, targets in GRAPH.items():
        if module.startswith(SEPARATE) or module == "calcache":
            continue
        own = layer_of(module)
        assert own is not None
        for target in targets:
            if target.startswith(SEPARATE):
                continue
            theirs = layer_of(target)
            if theirs is not None and theirs > own and (module, target) not in ALLOWED_UPWARD:
                upward.append(f"{module} -> {target}")
    assert sorted(upward) == []


def test_the_allowed_upward_imports_still_exist() -> None:
    # An exception nobody needs any more should go from the list.
    assert all(target in GRAPH[module] for module, target in ALLOWED_UPWARD)


def test_flags_imports_nothing_of_calcache() -> None:
    assert [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith("flags")
        for target in targets
        if target.startswith("calcache")
    ] == []


def test_only_the_emulator_command_and_demo_reach_the_emulator() -> None:
    users = sorted(
        module
        for module, targets in GRAPH.items()
        if not module.startswith("calcache.emulator")
        and any(target.startswith("calcache.emulator") for target in targets)
    )
    assert users == [
        "calcache.management.commands.calcache_demo",
        "calcache.management.commands.run_google_emulator",
    ]


def test_only_google_credentials_builds_a_client_for_a_stored_credential() -> None:
    builders = sorted(
        module
        for module, path in MODULES.items()
        if "GoogleCalendarClient(" in path.read_text() and not module.startswith("calcache.google")
    )
    # connecting an account asks Google before any credential row exists
    assert builders == ["calcache.accounts.connection"]


def test_google_knows_no_models_except_credentials() -> None:
    assert [
        module
        for module, targets in GRAPH.items()
        if module.startswith("calcache.google")
        and module != "calcache.google.credentials"
        and "calcache.models" in targets
    ] == []


def test_every_package_says_what_it_owns_and_may_import() -> None:
    missing = []
    for package in ("google", "accounts", "sync", "push", "background", "availability", "rollout"):
        doc = ast.get_docstring(
            ast.parse((ROOT / "calcache" / package / "__init__.py").read_text())
        )
        if not doc or "May import" not in doc:
            missing.append(package)
    assert missing == []


BLOCKER = """
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"werkzeug", "pytest", "hypothesis", "factory"}:
            raise ImportError(f"No module named {name!r} (blocked)")
        return None

sys.meta_path.insert(0, Absent())
import django
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
                    "django.contrib.sessions", "django.contrib.messages", "waffle", "flags",
                    "calcache"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    WAFFLE_FLAG_MODEL="flags.Flag",
    SECRET_KEY="layout-test",
    USE_TZ=True,
)
django.setup()
import calcache.services, calcache.selectors, calcache.tasks, calcache.urls, flags
from calcache.services import connect_google_account, get_availability
from calcache.selectors import busy_intervals
assert get_availability.__module__ == "calcache.availability.answer"
import calcache.admin
from django.core.management import call_command
try:
    import calcache.emulator
except ImportError as exc:
    print("EMULATOR:", exc)
try:
    call_command("run_google_emulator", "--port", "0")
except Exception as exc:
    print("COMMAND:", type(exc).__name__, exc)
print("CORE OK")
"""


def test_the_core_imports_without_the_emulator_extra_or_test_tools() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "CORE OK" in done.stdout
    needs = "the Google Calendar emulator needs the optional 'emulator' extra"
    assert f"EMULATOR: {needs}" in done.stdout
    assert f"COMMAND: CommandError {needs}" in done.stdout


@pytest.mark.parametrize("facade", ["calcache.services", "calcache.selectors"])
def test_a_facade_types_exports_and_loads_the_same_names(facade: str) -> None:
    tree = ast.parse(MODULES[facade].read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and getattr(node, "lineno", 0) in _type_checking_lines(tree)
        for alias in node.names
    }
    module = importlib.import_module(facade)
    assert typed == set(module.FACADE) == set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is getattr(importlib.import_module(module.FACADE[name]), name)


def test_the_facades_import_without_configured_django() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import calcache.services, calcache.selectors, flags"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    assert done.returncode == 0, done.stderr


# The plan calcache came from and the notes on Google it was written with are not part of
# the repository: our own docs/ say what we rely on.
OUTSIDE = [r"GOOGLE_CALENDAR\.md", r"\bthe seed('s)?\b", r"\.\./shared/"]


@pytest.mark.parametrize("pattern", OUTSIDE)
def test_nothing_points_outside_the_repository(pattern: str) -> None:
    places = [
        str(path.relative_to(ROOT))
        for folder in ("calcache", "flags", "project", "tests", "bench", "docs", "templates", ".ci")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".md", ".html", ".txt"}
        and path != Path(__file__)
        and re.search(pattern, path.read_text(errors="replace"), re.IGNORECASE)
    ]
    for name in ("README.md", "CHANGELOG.md", "Makefile", "pyproject.toml"):
        if re.search(pattern, (ROOT / name).read_text(), re.IGNORECASE):
            places.append(name)
    assert places == []
