"""package.xml files against the code: every import declared by its rosdep key, nothing unused.

`rosdep install --from-paths src` installs what package.xml names, and nothing else; a module the
code imports but package.xml does not name is missing on a robot, and a key that names a build
type (ament_python) makes rosdep fail outright. dependencies.py maps each import to its key; these
tests read the imports with `ast` (also `importorskip("x")` and `import_module("x")`), the
package.xml files with ElementTree, and the interfaces' field types from their .msg/.srv files.

tools/ (developer scripts run from a checkout: model conversion, benchmarks) and setup.py are not
installed as run-time code and are left out.
"""
from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from fnmatch import fnmatch
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1]
INTERFACES = PKG.parent / "face_recog_interfaces"
OWN_PACKAGE = "face_recog_ros"
DEPEND_TAGS = ("depend", "build_depend", "build_export_depend", "buildtool_depend",
               "buildtool_export_depend", "exec_depend", "test_depend", "doc_depend")
DYNAMIC_IMPORTS = ("importorskip", "import_module")  # calls whose first argument is a module


from face_recog_ros import dependencies as deps  # noqa: E402


def top_level_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in one file, static and dynamic."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in DYNAMIC_IMPORTS):
            names.add(node.args[0].value.split(".")[0])
    return names


def third_party(names: set[str], local: set[str] = frozenset()) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n != OWN_PACKAGE
            and n not in local and n != "__future__"}


def imports_by_scope() -> dict[str, dict[str, list[str]]]:
    """{"run": {module: [files]}, "test": {...}}: run-time code is the Python package and the
    launch files; test code is test/ (its own modules, like conftest, are not dependencies)."""
    run_files = sorted((PKG / OWN_PACKAGE).rglob("*.py")) + sorted((PKG / "launch").glob("*.py"))
    test_files = sorted((PKG / "test").rglob("*.py"))
    test_local = {p.stem for p in test_files}
    scopes: dict[str, dict[str, list[str]]] = {"run": {}, "test": {}}
    for scope, files, local in (("run", run_files, set()), ("test", test_files, test_local)):
        for path in files:
            for name in third_party(top_level_imports(path), local):
                scopes[scope].setdefault(name, []).append(str(path.relative_to(PKG)))
    return scopes


def file_uses() -> set[str]:
    """Keys that non-Python files need (launch front ends), from dependencies.FILE_USES."""
    keys = set()
    for pattern, needed in deps.FILE_USES.items():
        if any(fnmatch(str(p.relative_to(PKG)), pattern) for p in PKG.rglob("*")):
            keys.update(needed)
    return keys


def declared(package_xml: Path) -> dict[str, set[str]]:
    """{tag: {keys}} of one package.xml's dependency elements."""
    root = ET.parse(package_xml).getroot()
    assert root.get("format") == "3", f"{package_xml}: use package format 3"
    out: dict[str, set[str]] = {tag: set() for tag in DEPEND_TAGS}
    for tag in DEPEND_TAGS:
        for element in root.findall(tag):
            out[tag].add(element.text.strip())
    return out


def comments(package_xml: Path) -> str:
    return " ".join(re.findall(r"<!--(.*?)-->", package_xml.read_text(), re.S))


def build_type(package_xml: Path) -> str:
    return ET.parse(package_xml).getroot().findtext("export/build_type").strip()


SCOPES = imports_by_scope()
PACKAGE_XML = PKG / "package.xml"
DECLARED = declared(PACKAGE_XML)
ALL_DECLARED = set().union(*DECLARED.values())


def test_every_import_has_a_row_in_the_table():
    unknown = {name: files for scope in SCOPES.values() for name, files in scope.items()
               if name not in deps.MODULES}
    assert not unknown, (
        f"imports with no row in dependencies.py: {unknown}. Add each with its rosdep key (see "
        "rosdistro's rosdep/python.yaml; a ROS package is its own key), or None if it has none.")


def test_run_time_imports_are_exec_depends():
    missing = {}
    for name, files in SCOPES["run"].items():
        dep = deps.MODULES.get(name)
        if dep and dep.kind == deps.EXEC and dep.key and dep.key not in DECLARED["exec_depend"]:
            missing[dep.key] = files
    missing.update({key: ["launch/"] for key in file_uses() - DECLARED["exec_depend"]})
    assert not missing, f"add <exec_depend> to package.xml for: {missing}"


def test_test_imports_are_declared():
    missing = {}
    for name, files in SCOPES["test"].items():
        dep = deps.MODULES.get(name)
        if dep and dep.kind != deps.OPTIONAL and dep.key and dep.key not in ALL_DECLARED:
            missing[dep.key] = files
    assert not missing, f"add <test_depend> (or <exec_depend>) to package.xml for: {missing}"


def test_kinds_in_the_table_match_the_tags():
    """An EXEC row is an <exec_depend>, a TEST row a <test_depend>, an OPTIONAL row neither."""
    tag_of = {deps.EXEC: "exec_depend", deps.TEST: "test_depend"}
    wrong = []
    for name, dep in deps.MODULES.items():
        for tag, keys in DECLARED.items():
            if dep.key in keys and tag != tag_of.get(dep.kind):
                wrong.append(f"{dep.key} is <{tag}> but dependencies.py says {dep.kind}")
    assert not wrong, wrong


def test_every_declared_key_is_used():
    used_keys = file_uses()
    for scope in SCOPES.values():
        used_keys.update(deps.MODULES[name].key for name in scope if name in deps.MODULES)
    unused = ALL_DECLARED - used_keys
    assert not unused, f"package.xml declares keys nothing imports (remove them): {sorted(unused)}"


def test_no_build_type_is_used_as_a_key():
    for xml in (PACKAGE_XML, INTERFACES / "package.xml"):
        keys = set().union(*declared(xml).values())
        bad = keys & set(deps.BUILD_TYPES_WITHOUT_KEY)
        assert not bad, (f"{xml}: {sorted(bad)} is a build type, not a rosdep key (rosdep: "
                         "'Cannot locate rosdep definition'); it belongs in <export> only")
        assert build_type(xml) in ("ament_python", "ament_cmake")


def test_every_declared_key_is_a_known_rosdep_key():
    """Catches typos and invented keys: each key must come from the table."""
    known = {d.key for d in deps.MODULES.values() if d.key}
    known |= file_uses() | set(deps.INTERFACE_TOOLS)
    unknown = ALL_DECLARED - known
    assert not unknown, f"keys not in dependencies.py (typo, or add a row): {sorted(unknown)}"


def test_optional_and_keyless_modules_are_documented_in_package_xml():
    """rosdep cannot install these, so package.xml says, in a comment, how to get them."""
    text = comments(PACKAGE_XML)
    used = set(SCOPES["run"]) | set(SCOPES["test"])
    undocumented = []
    for name in sorted(used):
        dep = deps.MODULES.get(name)
        if dep is None or (dep.key and dep.kind != deps.OPTIONAL):
            continue
        for word in filter(None, (dep.pip, dep.key)):
            if word not in text:
                undocumented.append(f"{name}: '{word}'")
    assert not undocumented, f"name these in a package.xml comment: {undocumented}"


def test_pip_extras_cover_every_run_time_import():
    """Each module the code needs at run time that pip can install is in an extra (the node's ROS
    packages come from rosdep). test_wheel_install checks the built wheel's metadata."""
    extras = deps.pip_extras()
    in_extra = {n for n, d in deps.MODULES.items() if d.extra in (deps.STANDALONE, deps.ALL)}
    needed = {n for n in SCOPES["run"]
              if deps.MODULES[n].kind == deps.EXEC and deps.MODULES[n].pip}
    assert needed <= in_extra, f"give these an extra in dependencies.py: {needed - in_extra}"
    assert set(extras[deps.STANDALONE]) < set(extras[deps.ALL])


def interface_field_packages() -> set[str]:
    """Packages whose messages the .msg/.srv fields use (`pkg/Type` field types)."""
    packages = set()
    for path in sorted(INTERFACES.glob("msg/*.msg")) + sorted(INTERFACES.glob("srv/*.srv")):
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and line != "---" and "/" in line.split()[0]:
                packages.add(line.split()[0].split("/")[0])
    return packages


def test_interfaces_package_declares_what_its_messages_use():
    found = declared(INTERFACES / "package.xml")
    keys = set().union(*found.values())
    used = interface_field_packages()
    assert used, "no field of another package found: the parser is broken"
    assert used <= found["depend"], f"add <depend> for {sorted(used - found['depend'])}"
    unused = keys - used - set(deps.INTERFACE_TOOLS)
    assert not unused, f"face_recog_interfaces declares keys nothing uses: {sorted(unused)}"
    cmake = (INTERFACES / "CMakeLists.txt").read_text()
    listed = set(re.search(r"DEPENDENCIES([^)]*)\)", cmake).group(1).split())
    assert listed == used, f"CMakeLists.txt DEPENDENCIES {listed} != the fields' {used}"
    assert {"ament_cmake", "rosidl_default_generators"} <= found["buildtool_depend"]
    assert "rosidl_default_runtime" in found["exec_depend"]


@pytest.mark.parametrize("xml", [PKG / "package.xml", INTERFACES / "package.xml"],
                         ids=["face_recog_ros", "face_recog_interfaces"])
def test_no_key_is_declared_twice(xml):
    root = ET.parse(xml).getroot()
    seen = [e.text.strip() for tag in DEPEND_TAGS for e in root.findall(tag)]
    duplicates = sorted({k for k in seen if seen.count(k) > 1})
    assert not duplicates, f"{xml}: declared more than once: {duplicates}"


def test_scanner_sees_static_and_dynamic_imports(tmp_path):
    """The checks above are only as good as the import reader: it must see every form."""
    source = tmp_path / "sample.py"
    source.write_text(
        "import os, numpy.linalg as la\nfrom cv2 import imread\nfrom . import sibling\n"
        "def f():\n    import yaml\n    importlib.import_module('scipy.ndimage')\n"
        "pytest.importorskip('rosbags')\n")
    assert third_party(top_level_imports(source)) == {"numpy", "cv2", "yaml", "scipy", "rosbags"}
