"""The package's layout rules, checked on the source: layers, ROS only in ros/, no cycles, size.

The folders follow the data flow (io -> core -> tracking -> ros messages), with the gallery
beside the core and the tools for recorded media (offline/) and the command line (cli/) on top.
A layer imports only from the layers below it; only ros/ imports rclpy and message packages.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "face_recog_ros"
NAME = "face_recog_ros"
MAX_LINES = 400

FOUNDATION = {"types", "options", "environment", "dependencies"}
# What each part may import from this package (besides itself and the foundation).
ALLOWED = {
    "io": set(),
    "gallery": set(),
    "core": {"gallery"},
    "tracking": {"core", "gallery"},
    "config": {"core", "gallery", "tracking"},
    "offline": {"config", "core", "gallery", "io", "tracking"},
    "cli": {"config", "core", "gallery", "io", "offline", "tracking"},
    "ros": {"config", "core", "gallery", "io", "tracking"},
}
ROS_PACKAGES = ("rclpy", "rcl_interfaces", "builtin_interfaces", "face_recog_interfaces", "launch",
                "launch_ros", "cv_bridge")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((NAME, *parts))


def part(module: str) -> str:
    """The layer a module belongs to: its subpackage, or the top-level module's own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path, *, top_level_only: bool = False) -> list[str]:
    """Absolute names of everything ``path`` imports (type-checking-only imports left out)."""
    tree = ast.parse(path.read_text())
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    found: list[str] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import) and not (top_level_only and nested):
                found.extend(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and not (top_level_only and nested):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append(target)
                found.extend(f"{target}.{alias.name}" for alias in child.names)  # submodules
            scope = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
            visit(child, nested or isinstance(child, scope))
    visit(tree, False)
    known = {module_name(p) for p in modules()}
    return [m for m in found if not m.startswith(NAME) or m in known]


def test_every_part_imports_only_from_the_layers_below_it():
    wrong = []
    for path in modules():
        me = part(module_name(path))
        if me in FOUNDATION | {"__init__"}:
            allowed = set() if me in FOUNDATION else set(ALLOWED) | {"config"}
        else:
            allowed = ALLOWED[me]
        for target in imports(path):
            if target.startswith(f"{NAME}.") and part(target) not in allowed | FOUNDATION | {me}:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_only_the_ros_layer_imports_ros():
    wrong = [f"{path.relative_to(PACKAGE)} imports {target}"
             for path in modules() if part(module_name(path)) != "ros"
             for target in imports(path)
             if target.split(".")[0] in ROS_PACKAGES or target.split(".")[0].endswith("_msgs")]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    """Between parts (any import), and between modules (imports at module level)."""
    parts: dict[str, set[str]] = defaultdict(set)
    graph: dict[str, set[str]] = defaultdict(set)
    for path in modules():
        me = module_name(path)
        for target in imports(path):
            if (
                target.startswith(f"{NAME}.")
                and part(target) != part(me)
                and part(me) != "__init__"
            ):
                parts[part(me)].add(part(target))
        graph[me] = {
            t for t in imports(path, top_level_only=True) if t.startswith(f"{NAME}.") and t != me
        }
    for edges in (parts, graph):
        cycle = find_cycle(edges)
        assert cycle is None, " -> ".join(cycle)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("module, forbidden", [
    (f"{NAME}.core.recognizer", ("tracking", "offline", "cli", "ros", "config")),
    (f"{NAME}.tracking.stream", ("offline", "cli", "ros", "config")),
    (f"{NAME}.io.bag", ("core", "tracking", "offline", "cli", "ros")),
    (f"{NAME}.cli.app", ("ros",)),
])
def test_a_layer_loads_nothing_above_it(module, forbidden):
    """What a fresh interpreter loads with the module: nothing of a higher layer, no rclpy."""
    code = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
            "print(' '.join(sorted(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True,
                            check=True).stdout.split()
    above = [m for m in loaded if m.startswith(f"{NAME}.") and part(m) in forbidden]
    assert not above and "rclpy" not in loaded, above


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
