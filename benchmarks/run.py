"""Run the benchmark cases and print one row each: the case, salesflow's median, the
baseline's median, their ratio, the target and whether it is met.

    python -m benchmarks                        # every case, small sizes (~2 minutes)
    python -m benchmarks --size full            # the full sizes of the targets
    python -m benchmarks --only search_sqlite   # one case (repeat --only for more)
    python -m benchmarks --list                 # the cases

Each case runs in a fresh Python process of its own (salesflow and its baseline
together, in that process), so that one case's memory and caches never weigh on the
next, and a case that runs past ``--timeout`` is stopped and reported as skipped.
PostgreSQL cases run when ``SALESFLOW_TEST_POSTGRES_DSN`` names a database they may
write to (in schemas named ``sfbench_...``); otherwise they are skipped, saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import threading
import time

from benchmarks._support import SIZES, Row, Target

_ROW = "ROW "
_ROOT = pathlib.Path(__file__).resolve().parent.parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.cases import CASES

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="CASE",
        help="run only this case (repeatable, or comma-separated); see --list",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one case may run (default: 300 small, 900 full)",
    )
    parser.add_argument("--json", type=pathlib.Path, help="also write the rows to this file")
    parser.add_argument("--markdown", action="store_true", help="print the final table as Markdown")
    parser.add_argument("--worker", metavar="CASE", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    names = [n for value in arguments.only for n in value.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    arguments.only = names or list(CASES)
    return arguments


def main(argv: list[str] | None = None) -> int:
    from benchmarks.cases import CASES

    arguments = _arguments(argv)
    size = SIZES[arguments.size]
    if arguments.list:
        for name, case in CASES.items():
            print(f"{name:22} {(case.__doc__ or '').strip().splitlines()[0]}")
        return 0
    if arguments.worker:
        for row in CASES[arguments.worker](size):
            print(_ROW + json.dumps(row.as_dict()), flush=True)
        return 0

    timeout = arguments.timeout or (300.0 if size.name == "small" else 900.0)
    print(
        f"salesflow benchmarks, size {size.name}: Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    rows: list[Row] = []
    started = time.perf_counter()
    for name in arguments.only:
        print(f"[{name}]", flush=True)
        case_started = time.perf_counter()
        found = _run_case(name, size.name, timeout)
        for row in found:
            print("  " + " | ".join(row.cells()), flush=True)
        print(f"  ({time.perf_counter() - case_started:.1f} s)", flush=True)
        rows.extend(found)
    print(f"\nAll cases: {time.perf_counter() - started:.0f} s\n")
    print(_table(rows, markdown=arguments.markdown))
    notes = [r for r in rows if r.note or r.skipped]
    if notes:
        print()
        for row in notes:
            print(f"- {row.case}: {row.skipped or row.note}")
    if arguments.json is not None:
        arguments.json.write_text(
            json.dumps({"size": size.name, "rows": [r.as_dict() for r in rows]}, indent=2)
        )
    return 0


def _run_case(name: str, size: str, timeout: float) -> list[Row]:
    """Run one case in a fresh process; its rows, or one skipped row saying why not."""
    command = [sys.executable, "-m", "benchmarks", "--worker", name, "--size", size]
    process = subprocess.Popen(
        command, cwd=_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        process.kill()

    timer = threading.Timer(timeout, stop)
    timer.start()
    rows: list[Row] = []
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(process.stderr or ()), daemon=True)
    reader.start()
    try:
        for line in process.stdout or ():
            if line.startswith(_ROW):
                rows.append(Row.from_dict(json.loads(line[len(_ROW) :])))
            else:
                print(line, end="", flush=True)
        process.wait()
    finally:
        timer.cancel()
    reader.join(timeout=5)
    if process.returncode == 0 and rows:
        return rows
    if stopped.is_set():
        why = f"stopped after {timeout:.0f} s (--timeout)"
    else:
        last = [e.rstrip() for e in errors if e.strip()][-1:] or ["no output"]
        why = f"failed: {last[0]}"
        sys.stderr.write("".join(errors[-20:]))
    return [*rows, Row(name, None, None, Target("unknown", 0), skipped=why)]


def _table(rows: list[Row], *, markdown: bool) -> str:
    header = ["case", "salesflow", "baseline", "ratio", "target", "result"]
    cells = [header, *(r.cells() for r in rows)]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c) + " |" for c in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
