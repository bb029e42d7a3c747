"""Write ``docs/reference.md``, the API reference, from the public modules' ``__all__``,
signatures and docstrings.

    python docs/build_reference.py          # rewrite docs/reference.md
    python docs/build_reference.py --check  # exit 1 if it is out of date

The test suite runs the check, so the page always lists exactly what each module
exports, with the signatures and docstrings of the code.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent / "reference.md"

#: The public modules, each with what it is for. A name two of them export is
#: described under the first.
MODULES = (
    ("salesflow", "The application, its values, records and ports."),
    ("salesflow.errors", "The errors salesflow raises; all are `SalesflowError`s."),
    ("salesflow.processes", "The built-in processes."),
    ("salesflow.messages", "Texts kept translatable: what notices and errors are made of."),
    ("salesflow.policies", "A ready-made authorisation policy."),
    ("salesflow.ports", "The ports, for adapters of your own, and the repository interface."),
    ("salesflow.sqlite", "The SQLite repository (standard library `sqlite3`)."),
    ("salesflow.postgres", "The PostgreSQL repository (the `postgres` extra)."),
    ("salesflow.serialization", "JSON for every value, and the stored records' encoding."),
    ("salesflow.queries", "The query side's definitions, for repositories of your own."),
    ("salesflow.reporting", "The reports' values and how they are computed."),
    ("salesflow.testing", "The contract suite a repository must pass, and sample records."),
)

HEADER = """# API reference

Everything each public module exports (its `__all__`), with signatures and
docstrings taken from the code by `docs/build_reference.py`; the test suite checks
that this page is up to date. The [index](index.md) has the API at a glance, and the
other pages explain how the parts work together.
"""

_ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|exc):`~?([^`]+)`")


def _markdown(text: str) -> str:
    """A docstring as Markdown: ``literal`` becomes `literal`, roles their target."""
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return text.replace("``", "`")


def _docstring(value: object) -> str:
    doc = inspect.getdoc(value)
    return _markdown(doc) if doc else ""


def _default(value: object) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, types.FunctionType | type):
        return value.__name__
    return repr(value)


def _annotation(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, type):
        return value.__name__
    return repr(value).replace("typing.", "")


def _signature(name: str, value: Any) -> str:
    """``name(parameters) -> returns`` as written in the code, defaults included."""
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts: list[str] = []
    keyword_only_marked = False
    previous = None
    for parameter in signature.parameters.values():
        if parameter.name == "self":
            continue
        kind = parameter.kind
        if previous is inspect.Parameter.POSITIONAL_ONLY and kind is not previous:
            parts.append("/")
        if kind is inspect.Parameter.KEYWORD_ONLY and not keyword_only_marked:
            parts.append("*")
            keyword_only_marked = True
        text = parameter.name
        if kind is inspect.Parameter.VAR_POSITIONAL:  # what follows is keyword-only
            text = "*" + text
            keyword_only_marked = True
        elif kind is inspect.Parameter.VAR_KEYWORD:
            text = "**" + text
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {_default(parameter.default)}"
        parts.append(text)
        previous = kind
    returns = ""
    result = signature.return_annotation
    if result is not inspect.Signature.empty and not (
        isinstance(value, type) and result in (None, "None")
    ):
        returns = f" -> {_annotation(signature.return_annotation)}"
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        parts.append("/")
    return f"{name}({', '.join(parts)}){returns}"


def _comments(module: types.ModuleType) -> dict[str, str]:
    """The ``#:`` comment lines above each module-level assignment."""
    found: dict[str, str] = {}
    pending: list[str] = []
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return found
    for line in source.splitlines():
        if line.startswith("#:"):
            pending.append(line[2:].strip())
            continue
        assigned = re.match(r"([A-Za-z_]\w*)\s*(?::[^=]*)?=", line)
        if assigned and pending:
            found[assigned.group(1)] = " ".join(pending)
        pending = []
    return found


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties a class adds to its bases, in source order
    (what it overrides is described under the base)."""
    inherited = {name for base in cls.__mro__[1:] for name in vars(base)}
    for name, value in cls.__dict__.items():
        if name.startswith(("_", "test_")) or name in inherited:
            continue
        if isinstance(value, property | types.FunctionType | classmethod | staticmethod):
            yield name, value


def _fence(text: str) -> str:
    return f"```text\n{text}\n```"


def _describe_class(name: str, cls: type) -> list[str]:
    out: list[str] = []
    if issubclass(cls, enum.Enum):
        out.append(_fence(f"class {name}({cls.__mro__[1].__name__})"))
        own = cls.__dict__.get("__doc__")
        if own and own != enum.Enum.__doc__:
            out.append(_markdown(inspect.cleandoc(own)))
        out.append("Members: " + ", ".join(f"`{m.name}`" for m in cls) + ".")
        return out
    if issubclass(cls, BaseException):
        bases = ", ".join(b.__name__ for b in cls.__bases__)
        out.append(_fence(f"class {name}({bases})"))
        if cls.__doc__:
            out.append(_docstring(cls))
        return out
    out.append(_fence("class " + _signature(name, cls)))
    if cls.__doc__:
        out.append(_docstring(cls))
    parents = [b.__name__ for b in cls.__bases__ if b is not object]
    if parents:
        out.append(f"Based on {', '.join(f'`{b}`' for b in parents)}.")
    tests = sorted(n for n in dir(cls) if n.startswith("test_"))
    if tests:
        out.append(
            f"Its {len(tests)} `test_*` methods are the contract; their names say what each checks."
        )
    for member, value in _members(cls):
        if isinstance(value, property):
            out.append(f"- `.{member}` (property)" + _summary(value.fget))
        else:
            function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            out.append(f"#### `{name}.{member}`")
            out.append(_fence(_signature(member, function)))
            doc = _docstring(function)
            if doc:
                out.append(doc)
    return out


def _summary(value: object) -> str:
    doc = _docstring(value)
    return f": {doc.split(chr(10) + chr(10))[0]}" if doc else ""


def _describe(name: str, value: Any, comments: dict[str, str]) -> list[str]:
    out = [f"### `{name}`"]
    if name == "Money":
        out.append("py-moneyed's `moneyed.Money`, re-exported: a `Decimal` amount and a currency.")
    elif isinstance(value, type):
        out.extend(_describe_class(name, value))
    elif isinstance(value, types.FunctionType | types.BuiltinFunctionType):
        out.append(_fence(_signature(name, value)))
        doc = _docstring(value)
        if doc:
            out.append(doc)
    elif isinstance(value, types.ModuleType):
        out.append(f"The module `{value.__name__}` (below).")
    elif type(value).__module__ == "typing":
        out.append(_fence(f"{name} = {_annotation(value)}"))
    else:
        kind = type(value).__name__
        article = "An" if kind[0] in "aeiouAEIOU" else "A"
        out.append(
            f"{article} `{kind}`." + (f" {_markdown(comments[name])}" if name in comments else "")
        )
        stages = getattr(value, "stages", None)
        if isinstance(stages, tuple):
            listed = ", ".join(f"{s.name} {s.probability} (`{s.key}`)" for s in stages)
            out.append(f"Key `{value.key}`; its stages: {listed}.")
    return out


def render() -> str:
    sections = [HEADER]
    described: dict[int, str] = {}
    for module_name, purpose in MODULES:
        module = importlib.import_module(module_name)
        comments = _comments(module)
        lines = [f"## `{module_name}`", purpose]
        for name in sorted(module.__all__, key=str.lower):
            value = getattr(module, name)
            key = id(value)
            if isinstance(value, type | types.FunctionType) and key in described:
                lines.append(f"- `{name}`: see `{described[key]}`.")
                continue
            if isinstance(value, type | types.FunctionType):
                described[key] = f"{module_name}.{name}"
            lines.extend(_describe(name, value, comments))
        sections.append("\n\n".join(lines))
    return "\n\n".join(sections).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is out of date: run python docs/build_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
