"""Launch files: checked statically here (the `launch` packages have no PyPI wheels), and loaded
with the real launch system where it is installed (a ROS 2 machine).

Static checks read the Python launch files with `ast` and the XML twins with ElementTree: the
nodes they start exist as console scripts, the parameters they set are ones the nodes declare,
`image` is remapped, every argument used is declared, and the twins declare the same arguments.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ros_domain

PKG = Path(__file__).resolve().parents[1]
LAUNCH = PKG / "launch"
PACKAGE = "face_recog_ros"
TWINS = ["face_recognition", "webcam"]


# --- reading the Python launch files ----------------------------------------------------------

def call_name(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def literal(node: ast.AST, constants: dict[str, object]) -> object:
    """A value as text: constants, LaunchConfiguration('x') -> '$(var x)', ParameterValue(v) ->
    v."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.Call) and call_name(node) == "LaunchConfiguration":
        return f"$(var {node.args[0].value})"
    if isinstance(node, ast.Call) and call_name(node) == "ParameterValue":
        return literal(node.args[0], constants)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal(e, constants) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {
            literal(k, constants): literal(v, constants) for k, v in zip(node.keys, node.values)
        }
    if isinstance(node, ast.Call) and call_name(node) == "items":  # {...}.items()
        return literal(node.func.value, constants)
    return ast.unparse(node)  # computed (e.g. a path join): kept as source text


@dataclass
class LaunchNode:
    package: str
    executable: str
    name: str
    parameters: list = field(default_factory=list)  # files ('$(var params_file)') and dicts
    remappings: dict = field(default_factory=dict)
    arguments: list[str] = field(default_factory=list)


@dataclass
class Launch:
    arguments: dict[str, object]  # declared name -> default (as text)
    nodes: list[LaunchNode]
    env: dict[str, str]
    includes: list[tuple[str, dict]]  # (included file name, arguments passed)
    used: set[str]  # every $(var x) / LaunchConfiguration('x') referenced


def assigned_values(tree: ast.Module) -> dict[str, object]:
    """Values of simple assignments (`X = 'a'`, `share = get_package_share_directory(...)`),
    evaluated for real where they only join paths in the ament index, in source order."""
    from ament_index_python.packages import get_package_share_directory
    values: dict[str, object] = {}
    for n in ast.walk(tree):
        if (
            isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)
        ):
            try:
                values[n.targets[0].id] = eval(
                    compile(ast.Expression(n.value), "<launch>", "eval"),
                    {"os": os, "get_package_share_directory": get_package_share_directory},
                    dict(values),
                )
            except Exception:  # anything else (actions, substitutions) is not a plain value
                pass
    return values


def parse_python(path: Path) -> Launch:
    tree = ast.parse(path.read_text(), filename=str(path))
    constants = assigned_values(tree)
    arguments, nodes, env, includes, used = {}, [], {}, [], set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call_name(call)
        kw = {k.arg: k.value for k in call.keywords}
        if name == "DeclareLaunchArgument":
            arguments[call.args[0].value] = literal(kw["default_value"], constants)
        elif name == "LaunchConfiguration":
            used.add(call.args[0].value)
        elif name == "SetEnvironmentVariable":
            env[call.args[0].value] = literal(call.args[1], constants)
        elif name in ("Node", "LifecycleNode"):
            values = {k: literal(v, constants) for k, v in kw.items()}
            nodes.append(
                LaunchNode(
                    values["package"],
                    values["executable"],
                    values.get("name", ""),
                    values.get("parameters", []),
                    dict(values.get("remappings", [])),
                    values.get("arguments", []),
                )
            )
        elif name == "IncludeLaunchDescription":
            source = ast.unparse(call.args[0])
            included = re.findall(r"'([\w.]+\.launch\.\w+)'", source)
            includes.append((included[0], literal(kw["launch_arguments"], constants)))
    return Launch(arguments, nodes, env, includes, used)


def parse_xml(path: Path) -> Launch:
    root = ET.parse(path).getroot()
    assert root.tag == "launch"
    text = path.read_text()
    arguments = {a.get("name"): a.get("default") for a in root.findall("arg")}
    nodes = []
    for n in root.findall("node"):
        parameters = []
        for p in n.findall("param"):
            parameters.append(p.get("from") if p.get("from") else {p.get("name"): p.get("value")})
        nodes.append(LaunchNode(n.get("pkg"), n.get("exec"), n.get("name", ""), parameters,
                                {r.get("from"): r.get("to") for r in n.findall("remap")},
                                re.findall(r"\$\([^)]*\)|\S+", n.get("args", ""))))
    env = {e.get("name"): e.get("value") for e in root.findall("set_env")}
    includes = [
        (Path(i.get("file")).name, {a.get("name"): a.get("value") for a in i.findall("arg")})
        for i in root.findall("include")
    ]
    return Launch(arguments, nodes, env, includes, set(re.findall(r"\$\(var (\w+)\)", text)))


def load(name: str, kind: str) -> Launch:
    path = LAUNCH / f"{name}.launch.{kind}"
    return parse_python(path) if kind == "py" else parse_xml(path)


def share() -> str:
    from ament_index_python.packages import get_package_share_directory
    return get_package_share_directory(PACKAGE)


def merged_params(node: LaunchNode) -> dict:
    out = {}
    for p in node.parameters:
        if isinstance(p, dict):
            out.update(p)
    return out


def declared_parameters(module: Path) -> set[str]:
    """Names passed to declare_parameter(...) in a node's source."""
    tree = ast.parse(module.read_text())
    return {
        c.args[0].value
        for c in ast.walk(tree)
        if isinstance(c, ast.Call)
        and call_name(c) == "declare_parameter"
        and c.args
        and isinstance(c.args[0], ast.Constant)
    }


BOTH = [(name, kind) for name in TWINS for kind in ("py", "xml")]


# --- static checks ----------------------------------------------------------------------------

@pytest.mark.parametrize("name,kind", BOTH)
def test_every_argument_used_is_declared_and_every_declared_one_used(name: str, kind: str) -> None:
    launch = load(name, kind)
    assert launch.used <= set(
        launch.arguments
    ), f"undeclared: {launch.used - set(launch.arguments)}"
    assert (
        set(launch.arguments) <= launch.used
    ), f"declared but unused: {set(launch.arguments) - launch.used}"


@pytest.mark.parametrize("kind", ["py", "xml"])
def test_recognition_launch_starts_the_node_with_params_file_and_remapping(kind: str) -> None:
    launch = load("face_recognition", kind)
    assert set(launch.arguments) == {
        "image_topic",
        "namespace",
        "params_file",
        "use_compressed",
        "log_level",
        "autostart",
        "fastdds_profile",
    }
    (node,) = launch.nodes
    assert (node.package, node.executable, node.name) == (PACKAGE, "face_recognition_node",
                                                          "face_recognition_node")
    assert (
        node.parameters[0] == "$(var params_file)"
    )  # the file first: launch arguments override it
    assert merged_params(node) == {"use_compressed": "$(var use_compressed)",
                                   "autostart": "$(var autostart)"}
    assert node.remappings == {"image": "$(var image_topic)"}
    assert node.arguments == ["--ros-args", "--log-level", "$(var log_level)"]
    assert launch.env == {"OPENBLAS_NUM_THREADS": "1",
                          "FASTDDS_DEFAULT_PROFILES_FILE": "$(var fastdds_profile)",
                          "FASTRTPS_DEFAULT_PROFILES_FILE": "$(var fastdds_profile)"}
    profile = launch.arguments["fastdds_profile"].replace(f"$(find-pkg-share {PACKAGE})", share())
    assert Path(profile) == Path(share()) / "config" / "fastdds_large_frames.xml"
    assert Path(profile).is_file()
    default = launch.arguments["params_file"].replace(f"$(find-pkg-share {PACKAGE})", share())
    assert Path(default) == Path(share()) / "config" / "face_recognition.yaml"
    assert Path(default).is_file()


@pytest.mark.parametrize("kind", ["py", "xml"])
def test_webcam_launch_wires_the_camera_to_the_recognition_launch(kind: str) -> None:
    launch = load("webcam", kind)
    (camera,) = launch.nodes
    assert (camera.package, camera.executable) == (PACKAGE, "camera_publisher")
    camera_params = merged_params(camera)
    assert camera_params == {
        k: f"$(var {k})" for k in ("device", "width", "height", "fps", "frame_id")
    }
    assert set(camera_params) <= declared_parameters(PKG / PACKAGE / "ros" / "camera_publisher.py")
    ((included, args),) = launch.includes
    assert included == f"face_recognition.launch.{kind}"  # the twin in the same format
    assert args["image_topic"] == camera.remappings["image"]  # the camera's output feeds the node
    assert not args["image_topic"].startswith("/")  # relative: both follow the namespace argument
    assert {k: args[k] for k in ("namespace", "params_file", "log_level")} == {
        k: f"$(var {k})" for k in ("namespace", "params_file", "log_level")}
    assert set(args) <= set(load("face_recognition", kind).arguments)


@pytest.mark.parametrize("name", TWINS)
def test_python_and_xml_twins_declare_the_same_arguments_and_defaults(name: str) -> None:
    py, xml = load(name, "py"), load(name, "xml")
    assert py.arguments.keys() == xml.arguments.keys()
    for arg, default in py.arguments.items():
        # The Python default was evaluated (get_package_share_directory); XML's is $(find-pkg-
        # share).
        assert xml.arguments[arg].replace(f"$(find-pkg-share {PACKAGE})", share()) == default, arg
    assert [(n.package, n.executable, n.name) for n in py.nodes] == [
        (n.package, n.executable, n.name) for n in xml.nodes]
    assert py.env == xml.env
    assert [args.keys() for _, args in py.includes] == [args.keys() for _, args in xml.includes]


def test_executables_are_console_scripts_of_the_package() -> None:
    scripts = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.value.startswith(PACKAGE + ".")}
    started = {n.executable for name, kind in BOTH for n in load(name, kind).nodes}
    assert started <= set(scripts)
    for executable in started:
        module = scripts[executable].module
        if executable == "face_recognition_node" and importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not in this checkout yet")
        assert importlib.util.find_spec(module) is not None, module


def test_default_params_file_and_included_launch_files_are_in_the_installed_share() -> None:
    data = yaml.safe_load((Path(share()) / "config" / "face_recognition.yaml").read_text())
    assert "ros__parameters" in data["/**"]
    for name, kind in BOTH:  # IncludeLaunchDescription finds the twin through the share folder
        assert (Path(share()) / "launch" / f"{name}.launch.{kind}").is_file()


# --- with the real launch system (a ROS 2 install) -----------------------------------------------

@pytest.mark.parametrize("name,kind", BOTH)
def test_launch_system_loads_the_description(name: str, kind: str) -> None:
    launch = pytest.importorskip(
        "launch", reason="the launch package is installed with ROS 2 only"
    )
    pytest.importorskip("launch_ros")
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    source = AnyLaunchDescriptionSource(str(LAUNCH / f"{name}.launch.{kind}"))
    description = source.try_get_launch_description_without_context()
    assert isinstance(description, launch.LaunchDescription)
    declared = {a.name: a for a in description.get_launch_arguments()}
    static = load(name, kind).arguments
    assert set(declared) >= set(static)  # included files' arguments are listed too
    text = launch.LaunchIntrospector().format_launch_description(description)
    assert "face_recog_ros" in text or "IncludeLaunchDescription" in text


@pytest.mark.parametrize("kind", ["py", "xml"])
def test_webcam_launch_applies_the_fastdds_profile_to_the_camera_too(kind: str) -> None:
    launch = load("webcam", kind)
    assert launch.env["FASTDDS_DEFAULT_PROFILES_FILE"] == "$(var fastdds_profile)"
    ((_, args),) = launch.includes
    assert args["fastdds_profile"] == "$(var fastdds_profile)"
    assert args["autostart"] == "$(var autostart)"


def test_python_launch_drives_the_lifecycle_when_autostart_is_false() -> None:
    tree = ast.parse((LAUNCH / "face_recognition.launch.py").read_text())
    emitted = [ast.unparse(c) for c in ast.walk(tree) if isinstance(c, ast.Call)
               and call_name(c) == "transition"]
    assert any("TRANSITION_CONFIGURE" in e and "condition=manual" in e for e in emitted)
    handlers = [ast.unparse(c) for c in ast.walk(tree) if isinstance(c, ast.Call)
                and call_name(c) == "RegisterEventHandler"]
    assert len(handlers) == 1
    assert "goal_state='inactive'" in handlers[0] and "TRANSITION_ACTIVATE" in handlers[0]
    assert "condition=manual" in handlers[0]
    assert "manual = UnlessCondition(LaunchConfiguration('autostart'))" in ast.unparse(tree)


def test_the_fastdds_profile_loads_in_a_ros_process(tmp_path) -> None:
    """Fast DDS reads the shipped profile without complaint, and two nodes still talk."""
    import subprocess
    import sys
    script = (
        "import rclpy; from rclpy.node import Node; from std_msgs.msg import String\n"
        "rclpy.init(); n = Node('profile_probe'); got = []\n"
        "n.create_subscription(String, 'x', got.append, 10)\n"
        "p = n.create_publisher(String, 'x', 10)\n"
        "for _ in range(50):\n"
        "    p.publish(String(data='hi')); rclpy.spin_once(n, timeout_sec=0.05)\n"
        "    if got: break\n"
        "print('received', len(got))\n")
    env = dict(os.environ, FASTDDS_DEFAULT_PROFILES_FILE=str(PKG / "config" /
                                                             "fastdds_large_frames.xml"),
               ROS_DOMAIN_ID=str(ros_domain()))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "received" in done.stdout and "received 0" not in done.stdout
    assert "error" not in done.stderr.lower(), done.stderr
