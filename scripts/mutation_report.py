"""The mutation testing report: what `mutmut run` (`make mutate`) found, module by module.

    .venv/bin/python scripts/mutation_report.py [--root DIR] [--write docs/mutation.md]

Reads mutmut's results (`mutants/**/*.meta` under `--root`, the checkout by default) and the survivors judged equivalent
(`tests/mutation_equivalents.toml`: a mutation that cannot change behaviour, each with its
reason, matched by module, function and the mutated line so renumbering does not stale it).
Prints the table (and writes it with `--write`); exits 1 when a module has a survivor nobody
explained, or kills fewer than 90 % of its mutants (timeouts and type-check catches count as
kills: the mutation was noticed).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"
FLOOR = 90.0
DETECTED = {1, 3, 36, 37, -24, 24, 152, 255}
"""mutmut's exit codes for a mutant the tests noticed (killed, timed out, caught by types)."""
SURVIVED = 0


@dataclass
class Survivor:
    key: str
    function: str
    removed: str
    added: str
    reason: str = ""


@dataclass
class Module:
    path: str
    total: int = 0
    detected: int = 0
    untested: int = 0
    survivors: list[Survivor] = field(default_factory=list)

    @property
    def equivalent(self) -> int:
        return sum(1 for s in self.survivors if s.reason)

    @property
    def unexplained(self) -> list[Survivor]:
        return [s for s in self.survivors if not s.reason]

    @property
    def kill_rate(self) -> float:
        return 100.0 * self.detected / self.total if self.total else 100.0


def _function_of(key: str) -> str:
    """`flags._decision.x_bucket__mutmut_6` -> `bucket`; methods keep their class."""
    name = key.rpartition(".")[2].split("__mutmut_")[0]
    return name.removeprefix("x_").replace("xǁ", "").replace("ǁ", ".")


def _diff(key: str, root: Path) -> tuple[str, str]:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", key],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    ).stdout
    removed = [line[1:].strip() for line in shown.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in shown.splitlines() if line.startswith("+")]
    removed = [line for line in removed if not line.startswith("--")]
    added = [line for line in added if not line.startswith("++")]
    return " / ".join(removed), " / ".join(added)


def _equivalents() -> list[dict[str, str]]:
    if not EQUIVALENTS.exists():
        return []
    entries: list[dict[str, str]] = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])
    return entries


def _reason(module: str, survivor: Survivor, entries: list[dict[str, str]]) -> str:
    for entry in entries:
        if (
            entry["module"] == module
            and entry["function"] == survivor.function
            and _same(entry["removed"], survivor.removed)
            and _same(entry["added"], survivor.added)
        ):
            return entry["reason"]
    return ""


def _same(a: str, b: str) -> bool:
    return re.sub(r"\s+", "", a) == re.sub(r"\s+", "", b)


def collect(root: Path) -> list[Module]:
    mutants = root / "mutants"
    entries = _equivalents()
    modules: list[Module] = []
    for meta in sorted(mutants.rglob("*.py.meta")):
        path = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        results = json.loads(meta.read_text())["exit_code_by_key"]
        if not results:
            continue
        module = Module(path)
        for key, code in sorted(results.items()):
            module.total += 1
            if code in DETECTED:
                module.detected += 1
            elif code in (5, 33, None):
                module.untested += 1
            else:
                removed, added = _diff(key, root)
                survivor = Survivor(key, _function_of(key), removed, added)
                survivor.reason = _reason(path, survivor, entries) if code == SURVIVED else ""
                module.survivors.append(survivor)
        modules.append(module)
    return modules


def render(modules: list[Module]) -> str:
    total = Counter[str]()
    lines = [
        "| module | mutants | detected | survived: equivalent | survived: unexplained | "
        "untested | kill rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in modules:
        lines.append(
            f"| `{m.path}` | {m.total} | {m.detected} | {m.equivalent} | {len(m.unexplained)} | "
            f"{m.untested} | {m.kill_rate:.1f} % |"
        )
        total.update(
            total=m.total,
            detected=m.detected,
            equivalent=m.equivalent,
            unexplained=len(m.unexplained),
            untested=m.untested,
        )
    rate = 100.0 * total["detected"] / total["total"] if total["total"] else 100.0
    lines.append(
        f"| **all** | {total['total']} | {total['detected']} | {total['equivalent']} | "
        f"{total['unexplained']} | {total['untested']} | **{rate:.1f} %** |"
    )
    lines += ["", "Survivors judged equivalent (`tests/mutation_equivalents.toml`):", ""]
    for m in modules:
        for s in m.survivors:
            if s.reason:
                lines.append(
                    f"- `{m.path}` `{s.function}`: `{s.removed}` -> `{s.added}`: {s.reason}"
                )
    unexplained = [(m, s) for m in modules for s in m.unexplained]
    if unexplained:
        lines += ["", "Survivors no test kills and nobody has explained:", ""]
        lines += [f"- `{s.key}`: `{s.removed}` -> `{s.added}`" for _, s in unexplained]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, action="append", help="Where mutmut ran (repeatable; the checkout)."
    )
    parser.add_argument("--write", type=Path, help="Also write the report (Markdown) here.")
    args = parser.parse_args()
    modules = [module for root in args.root or [ROOT] for module in collect(root)]
    if not modules:
        print("no mutmut results: run `make mutate` first", file=sys.stderr)
        return 2
    report = render(modules)
    print(report)
    if args.write:
        text = args.write.read_text() if args.write.exists() else ""
        start, end = "<!-- report:start -->", "<!-- report:end -->"
        if start in text and end in text:
            text = text[: text.index(start) + len(start)] + "\n" + report + text[text.index(end) :]
        else:
            text = f"{text}{start}\n{report}{end}\n"
        args.write.write_text(text)
    failing = [m for m in modules if m.unexplained or m.kill_rate < FLOOR]
    for m in failing:
        print(f"below the floor: {m.path} ({m.kill_rate:.1f} %, {len(m.unexplained)} unexplained)",
              file=sys.stderr)  # fmt: skip
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
