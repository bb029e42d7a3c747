"""docs/reference.md lists exactly what each public module exports, as the code has it."""

from __future__ import annotations

import importlib
import re
import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILDER: dict[str, Any] = runpy.run_path(str(ROOT / "docs" / "build_reference.py"))


def test_the_reference_is_up_to_date() -> None:
    # If this fails, run: python docs/build_reference.py
    assert BUILDER["PAGE"].read_text(encoding="utf-8") == BUILDER["render"]()


def test_each_module_section_names_exactly_its_exports() -> None:
    text = BUILDER["PAGE"].read_text(encoding="utf-8")
    sections = re.split(r"^## `([\w.]+)`$", text, flags=re.MULTILINE)[1:]
    listed = dict(zip(sections[::2], sections[1::2], strict=True))
    assert list(listed) == [name for name, _ in BUILDER["MODULES"]]
    for module_name, body in listed.items():
        described = re.findall(r"^### `(\w+)`$", body, flags=re.MULTILINE)
        referred = re.findall(r"^- `(\w+)`: see `[\w.]+`\.$", body, flags=re.MULTILINE)
        exported = importlib.import_module(module_name).__all__
        assert sorted(described + referred) == sorted(exported), module_name


def test_the_check_mode_reports_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("# API reference\n", encoding="utf-8")
    main = BUILDER["main"]
    globals_ = main.__globals__
    original = globals_["PAGE"]
    globals_["PAGE"] = stale
    try:
        assert main(["build_reference.py", "--check"]) == 1
        assert main(["build_reference.py"]) == 0
        assert main(["build_reference.py", "--check"]) == 0
    finally:
        globals_["PAGE"] = original
