"""The mutation-testing driver (scripts/mutate.py): what a narrowed run mutates and runs, the
groups `make mutate` runs, and that servers a killed test orphaned are stopped."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mutate.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutate_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mutate = load_script()


def test_a_narrowed_run_lists_only_its_modules_and_tests() -> None:
    pyproject = (SCRIPT.parents[1] / "pyproject.toml").read_text()
    narrowed = tomllib.loads(mutate.narrow(pyproject, ["proxy/_pins.py"], ["tests/unit"]))
    config = narrowed["tool"]["mutmut"]
    assert config["only_mutate"] == ["proxy/_pins.py"]
    assert config["pytest_add_cli_args_test_selection"] == ["tests/unit"]
    assert (
        config["do_not_mutate_patterns"]
        == tomllib.loads(pyproject)["tool"]["mutmut"]["do_not_mutate_patterns"]
    )  # the rest is left as it was
    untouched = tomllib.loads(mutate.narrow(pyproject, ["proxy/_pins.py"], None))
    assert (
        untouched["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
        == (tomllib.loads(pyproject)["tool"]["mutmut"]["pytest_add_cli_args_test_selection"])
    )


def test_a_pyproject_without_the_list_is_refused() -> None:
    with pytest.raises(ValueError, match="only_mutate"):
        mutate.narrow("[tool.mutmut]\n", ["proxy/_pins.py"], None)


def test_the_groups_name_each_module_once_with_its_tests() -> None:
    """(That they cover `only_mutate` exactly is checked by the script itself, in the checkout:
    here, under mutmut, `only_mutate` is narrowed.)"""
    listed = tomllib.loads((SCRIPT.parents[1] / "pyproject.toml").read_text())["tool"][
        "mutation_groups"
    ]
    modules = [module for group in listed for module in group["modules"]]
    assert len(modules) == len(set(modules))
    assert all(group["tests"] for group in listed)


def test_a_server_orphaned_by_a_killed_test_is_stopped() -> None:
    """A shell that starts a server and dies leaves it to init, unless the driver is a child
    subreaper: then the server is the driver's child, and stopped after the run."""
    driver = f"""
import subprocess, sys, time
sys.path.insert(0, {str(SCRIPT.parent)!r})
import importlib.util
spec = importlib.util.spec_from_file_location("m", {str(SCRIPT)!r})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
m.become_subreaper()
orphan = subprocess.run(["sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True)
pid = int(orphan.stdout)
print(pid, pid in m.children(), m.stop_children(), flush=True)
"""
    run = subprocess.run(
        [sys.executable, "-c", driver], capture_output=True, text=True, timeout=30, check=True
    )
    pid, adopted, stopped = run.stdout.split()
    assert (adopted, stopped) == ("True", "1")
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
