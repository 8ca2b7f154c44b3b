"""Run mutation testing (mutmut) and judge it against the floor: `make mutate`, or a narrowed run.

    .venv/bin/python scripts/mutate.py [--write docs/mutation.md]        # every group
    .venv/bin/python scripts/mutate.py --module common/_signing.py --tests tests/unit
    .venv/bin/python scripts/mutate.py --in-place                         # one mutmut run

By default it runs each group of `[[tool.mutation_groups]]` in pyproject.toml (modules and the
tests of their package) and reports them together. With `--module` (and optionally `--tests`)
it runs just those. Both work in a throw-away copy of the tracked tree whose `[tool.mutmut]`
lists only the run's modules and tests, so they never clobber `mutants/`. `--in-place` runs
mutmut once over `[tool.mutmut]` as it stands, results left in `mutants/` for `mutmut browse`
(slower: a surviving mutant reruns every test that called its function).

Any server a killed test left running (redis-server, php -S, nginx) is stopped afterwards: the
script is a child subreaper (Linux's PR_SET_CHILD_SUBREAPER, prctl(2)), so whatever a killed
test orphaned becomes its child, and it stops its children once mutmut is done. Nothing else
on the machine is touched.

Exit status: 0 when every module holds the floor (scripts/mutation_report.py), 1 when one does
not, 2 when mutmut itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PR_SET_CHILD_SUBREAPER = 36
"""prctl(2) option: orphaned descendants are reparented to this process, not to init."""


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def narrow(pyproject: str, modules: list[str], tests: list[str] | None) -> str:
    """`pyproject` with `[tool.mutmut]` limited to `modules` (and `tests`, when given).

    Raises ValueError when the file has no `only_mutate` list to replace.
    """
    pattern = re.compile(r"^only_mutate = \[.*?\]", re.S | re.M)
    if not pattern.search(pyproject):
        raise ValueError("pyproject.toml has no [tool.mutmut] only_mutate list")
    text = pattern.sub(lambda _: f"only_mutate = {_toml_list(modules)}", pyproject, count=1)
    if tests:
        text = re.sub(
            r"^pytest_add_cli_args_test_selection = \[.*?\]",
            lambda _: f"pytest_add_cli_args_test_selection = {_toml_list(tests)}",
            text,
            count=1,
            flags=re.S | re.M,
        )
    return text


def copy_tree(destination: Path) -> None:
    """Copy the tracked files (as they are in the work tree) and link the virtualenv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    (destination / ".venv").symlink_to(ROOT / ".venv")


def become_subreaper() -> None:
    """Orphans of this run (servers a killed test left) become children of this process."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children() -> list[int]:
    """PIDs whose parent is this process."""
    mine = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[1] == mine:
            found.append(int(entry.name))
    return found


def stop_children() -> int:
    """Stops every child (and so every orphan reparented here) until none is left; returns
    how many were stopped."""
    stopped = 0
    for _ in range(50):
        pids = children()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                stopped += 1
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return stopped


def run_mutmut(workdir: Path, max_children: int) -> bool:
    """One `mutmut run` in `workdir` (a fresh `mutants/`); False when mutmut itself failed."""
    mutants = workdir / "mutants"
    shutil.rmtree(mutants, ignore_errors=True)
    mutants.mkdir()
    (mutants / ".venv").symlink_to(ROOT / ".venv")
    mutmut = ROOT / ".venv" / "bin" / "mutmut"
    become_subreaper()
    try:
        status = subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)], cwd=workdir, check=False
        ).returncode
    finally:
        leftovers = stop_children()
        if leftovers:
            print(f"stopped {leftovers} processes killed tests left behind", file=sys.stderr)
    if status != 0:
        print(f"mutmut failed (exit {status}) in {workdir}", file=sys.stderr)
    return status == 0


def report(workdirs: list[Path], write: Path | None) -> int:
    command = [sys.executable, str(ROOT / "scripts" / "mutation_report.py")]
    for workdir in workdirs:
        command += ["--root", str(workdir)]
    if write:
        command += ["--write", str(write.resolve())]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


Group = dict[str, list[str] | str]
"""One `[[tool.mutation_groups]]` entry: `name`, `modules`, `tests`."""


def groups() -> list[Group]:
    """`[[tool.mutation_groups]]`; raises SystemExit when they do not cover exactly
    `[tool.mutmut] only_mutate`."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    listed: list[Group] = config["mutation_groups"]
    covered = sorted(m for group in listed for m in group["modules"])
    if covered != sorted(config["mutmut"]["only_mutate"]):
        raise SystemExit("[[tool.mutation_groups]] must cover exactly [tool.mutmut] only_mutate")
    return listed


def run_groups(listed: list[Group], max_children: int, write: Path | None) -> int:
    """Each group in its own copy of one snapshot of the tree (taken at the start, so an edit
    during the run changes nothing), one after the other; one report over all of them."""
    with tempfile.TemporaryDirectory(prefix="mutate-groups-") as scratch:
        snapshot = Path(scratch) / "snapshot"
        snapshot.mkdir()
        copy_tree(snapshot)
        workdirs = []
        for number, group in enumerate(listed):
            started = time.monotonic()
            workdir = Path(scratch) / f"group-{number}"
            shutil.copytree(snapshot, workdir, symlinks=True)
            pyproject = workdir / "pyproject.toml"
            modules, tests = list(group["modules"]), list(group.get("tests") or [])
            pyproject.write_text(narrow(pyproject.read_text(), modules, tests))
            if not run_mutmut(workdir, max_children):
                return 2
            workdirs.append(workdir)
            minutes = (time.monotonic() - started) / 60
            print(f"group {group['name']!r}: {minutes:.1f} min", file=sys.stderr)
        return report(workdirs, write)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", default=[], help="Mutate only this file.")
    parser.add_argument("--tests", action="append", help="Run only these tests (with --module).")
    parser.add_argument("--in-place", action="store_true", help="One mutmut run in mutants/.")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--write", type=Path, help="Write the report (Markdown) here.")
    args = parser.parse_args()
    if args.tests and not args.module:
        parser.error("--tests narrows a run: give the --module it is for")
    started = time.monotonic()
    try:
        if args.in_place:
            return report([ROOT], args.write) if run_mutmut(ROOT, args.max_children) else 2
        listed: list[Group] = [
            {"name": "chosen", "modules": args.module, "tests": args.tests or []}
        ]
        return run_groups(listed if args.module else groups(), args.max_children, args.write)
    finally:
        print(f"mutation run: {(time.monotonic() - started) / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
