"""Run mutation testing (mutmut) and judge it against the floor: `make mutate`, or a narrowed run.

    .venv/bin/python scripts/mutate.py [--write docs/mutation.md]
    .venv/bin/python scripts/mutate.py --module common/_signing.py --tests tests/unit

With no `--module`, it runs in place over every module `[tool.mutmut]` lists in
pyproject.toml (results stay in `mutants/` for `mutmut browse`). With `--module` (and
optionally `--tests`), it runs in a throw-away copy of the tracked tree whose `[tool.mutmut]`
lists only those modules and tests, so a quick run never clobbers a full one's results.

Either way, any server a killed test left running (redis-server, php -S, nginx) is stopped
afterwards: the run marks its processes with an environment variable and stops only the ones
that carry it.

Exit status: 0 when every module holds the floor (scripts/mutation_report.py), 1 when one does
not, 2 when mutmut itself failed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = "CHAT_MUTATION_RUN"
"""Environment variable every process of one run inherits; its value names the run."""


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


def stop_marked(run_id: str) -> list[int]:
    """Stop every process whose environment carries this run's mark; returns their PIDs."""
    stopped = []
    needle = f"{MARK}={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                stopped.append(int(entry.name))
            except ProcessLookupError:
                pass
    return stopped


def run(workdir: Path, max_children: int, write: Path | None) -> int:
    mutants = workdir / "mutants"
    shutil.rmtree(mutants, ignore_errors=True)
    mutants.mkdir()
    (mutants / ".venv").symlink_to(ROOT / ".venv")
    run_id = uuid.uuid4().hex
    env = {**os.environ, MARK: run_id}
    mutmut = ROOT / ".venv" / "bin" / "mutmut"
    try:
        status = subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=workdir,
            env=env,
            check=False,
        ).returncode
    finally:
        leftovers = stop_marked(run_id)
        if leftovers:
            print(f"stopped {len(leftovers)} processes killed tests left behind", file=sys.stderr)
    if status != 0:
        print(f"mutmut failed (exit {status})", file=sys.stderr)
        return 2
    report = [sys.executable, str(ROOT / "scripts" / "mutation_report.py"), "--root", str(workdir)]
    if write:
        report += ["--write", str(write.resolve())]
    return subprocess.run(report, cwd=workdir, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", default=[], help="Mutate only this file.")
    parser.add_argument("--tests", action="append", help="Run only these tests (with --module).")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--write", type=Path, help="Write the report (Markdown) here.")
    args = parser.parse_args()
    if args.tests and not args.module:
        parser.error("--tests narrows a run: give the --module it is for")
    if not args.module:
        return run(ROOT, args.max_children, args.write)
    with tempfile.TemporaryDirectory(prefix="mutate-") as scratch:
        workdir = Path(scratch)
        copy_tree(workdir)
        pyproject = workdir / "pyproject.toml"
        pyproject.write_text(narrow(pyproject.read_text(), args.module, args.tests))
        return run(workdir, args.max_children, args.write)


if __name__ == "__main__":
    raise SystemExit(main())
