"""Run the code in README.md and docs/*.md, so the documentation cannot fall behind.

Every fenced block whose info string is exactly ``python`` is executed; the blocks of
one file run in order in one shared namespace, so a later block may use the names an
earlier one defined. Blocks marked ``bash``, ``text``, ``console``, ``python no-run``
(or anything else) are shown to readers but not run. Each file runs in a fresh
temporary directory, so a block may create files (a SQLite database, say).

A failing block is reported with its file and the line its fence opens on; the
traceback's line numbers are those of the Markdown file.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent

#: README.md first, then every Markdown file under docs/, in name order.
DOC_FILES: list[Path] = [
    path for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))] if path.is_file()
]

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@attrs.frozen
class Block:
    """One fenced code block: its info string, its text, and the line its fence opens."""

    info: str
    code: str
    line: int

    @property
    def runs(self) -> bool:
        return self.info == "python"


def code_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order (CommonMark fences).

    A block closes at a line holding only a fence of the same character at least as
    long as the opening one; an unclosed block runs to the end of the text.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (
            opening["fence"][0] == "`" and "`" in opening["info"]  # not a fence
        ):
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        start = i + 1
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = _FENCE.match(lines[i])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[i]
            strip = len(line) - len(line.lstrip(" "))
            body.append(line[min(indent, strip) :])
            i += 1
        i += 1
        blocks.append(Block(opening["info"].strip(), "\n".join(body) + "\n", start))
    return blocks


def run_blocks(path: Path, blocks: list[Block], namespace: dict[str, object]) -> None:
    """Execute the runnable blocks in order; fail naming the file and the block's line."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    for block in blocks:
        if not block.runs:
            continue
        # Pad with blank lines so that tracebacks show the Markdown file's line numbers.
        source = "\n" * block.line + block.code
        failure = None
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except Exception as error:
            failure = "".join(traceback.format_exception(error))
        if failure is not None:
            pytest.fail(
                f"{name}:{block.line}: the python block starting on line {block.line} "
                f"failed\n{failure}",
                pytrace=False,
            )


@pytest.mark.parametrize("path", DOC_FILES, ids=[str(p.relative_to(ROOT)) for p in DOC_FILES])
def test_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(path.read_text(encoding="utf-8"))
    run_blocks(path, blocks, {"__name__": f"docs:{path.name}"})


@pytest.mark.parametrize("name", ["README.md", "docs/engine.md"])
def test_the_main_documents_have_runnable_blocks(name: str) -> None:
    """A mistyped info string would silently stop a document from being checked."""
    assert any(b.runs for b in code_blocks((ROOT / name).read_text(encoding="utf-8")))


def test_the_docs_folder_is_collected() -> None:
    assert ROOT / "README.md" in DOC_FILES
    assert ROOT / "docs" / "engine.md" in DOC_FILES


# -- the runner itself -------------------------------------------------------------

SAMPLE = """\
# Title

```python
x = 1
```

```bash
exit 1
```

```python no-run
raise RuntimeError("not run")
```

````text
```python
raise RuntimeError("inside a longer fence")
```
````

  ```python
  y = x + 1
  ```

~~~python
z = y * 10
~~~
"""


def test_only_blocks_marked_exactly_python_run() -> None:
    blocks = code_blocks(SAMPLE)
    assert [(b.info, b.line) for b in blocks] == [
        ("python", 3),
        ("bash", 7),
        ("python no-run", 11),
        ("text", 15),
        ("python", 21),
        ("python", 25),
    ]
    assert blocks[4].code == "y = x + 1\n"
    namespace: dict[str, object] = {}
    run_blocks(Path("sample.md"), blocks, namespace)
    assert namespace["z"] == 20


def test_a_failing_block_names_its_file_and_line(tmp_path: Path) -> None:
    doc = tmp_path / "broken.md"
    doc.write_text("Intro\n\n```python\nok = True\n```\n\n```python\n\nassert not ok\n```\n")
    with pytest.raises(pytest.fail.Exception) as failure:
        run_blocks(doc, code_blocks(doc.read_text()), {})
    message = str(failure.value)
    assert f"{doc}:7:" in message
    assert f'File "{doc}", line 9' in message
