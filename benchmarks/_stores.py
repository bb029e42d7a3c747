"""Stores of a given size, built fast and (for SQLite and PostgreSQL) once.

A store is made of *templates* -- opportunities created through ``SalesFlow`` itself,
so every row is exactly what salesflow writes -- and copies of them. Every id the
templates get ends in ``TOKEN``; copy ``k`` of a record is the same record with that
ending replaced by ``_{k:07d}`` in its ids, its references and its JSON. The copies
are made in the database (``INSERT ... SELECT``), since the point is only to have a
big store: how fast salesflow writes is measured by other cases.

Two shapes:

- ``actions``: 40 templates in the benchmark process (five stage actions), each created
  in Lead and moved to Meeting with full effects: 5 actions, 2 activities (one
  cancelled, one planned) and 5 events each. For change_stage at N stored and load.
- ``standard``: 250 templates in the standard process, spread over its six stages and
  50 owners. Their history is not copied (search and pipeline never read it). For
  search and pipeline.

SQLite stores are files in ``benchmarks/.cache`` and PostgreSQL stores are schemas
named ``sfbench_...``; both are named by a hash of the templates' rows and the schema
versions, so a change to what salesflow writes builds them again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import os
import pathlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Literal

import attrs

from benchmarks._support import CACHE
from salesflow import (
    ActionKind,
    Activity,
    ActivityKind,
    CancelPolicy,
    ChangeSet,
    Event,
    FixedClock,
    InMemoryRepository,
    Money,
    Opportunity,
    Organization,
    Process,
    Repository,
    SalesFlow,
    Stage,
    StageAction,
    StageKind,
)
from salesflow.sqlite import SCHEMA_VERSION as SQLITE_SCHEMA
from salesflow.sqlite import SQLiteRepository

Shape = Literal["actions", "standard", "history"]

WORKSPACE = "bench"
TOKEN = "_0000000"
NOW = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
TEMPLATES: dict[Shape, int] = {"actions": 40, "standard": 250, "history": 250}
OWNERS: dict[Shape, int] = {"actions": 40, "standard": 50, "history": 50}
#: Tables never copied, per shape: the processes are the workspace's, not per
#: opportunity; the 1M-row stores leave history out (search and pipeline never read it).
#: In other tables, only the rows holding the token (the templates' records) are copied.
NOT_COPIED: dict[Shape, frozenset[str]] = {
    "actions": frozenset({"processes"}),
    "standard": frozenset({"processes", "events"}),
    "history": frozenset({"processes"}),
}
#: The history shape: each template lives ten events, an hour apart from the last one
#: recorded (so the templates' histories interleave over HISTORY_SPAN).
HISTORY_EVENTS = 10
HISTORY_SPAN = dt.timedelta(hours=TEMPLATES["history"] * HISTORY_EVENTS)
#: Copied first, in this order (foreign keys point this way); any other table of
#: records (one with a ``workspace`` column) after them.
FIRST = ("opportunities", "activities", "events")
#: Bump when the way stores are built changes.
FORMAT = 1


def _tables(names: list[str], shape: Shape) -> list[str]:
    """The tables to copy, of the record tables ``names``, in the order to copy them."""
    wanted = [n for n in names if n not in NOT_COPIED[shape]]
    return [n for n in FIRST if n in wanted] + sorted(n for n in wanted if n not in FIRST)


def bench_process() -> Process:
    """Two open stages with five actions between them; each stage's CALENDAR action
    creates its activity on entry, and a stage change cancels the planned ones."""
    return Process(
        "bench",
        "Benchmark process",
        (
            Stage(
                "lead",
                "Lead",
                10,
                actions=(
                    StageAction("call", "Intro call", ActionKind.CALENDAR, auto_create=True),
                    StageAction("qualify", "Qualify the need"),
                    StageAction("budget", "Confirm the budget"),
                ),
            ),
            Stage(
                "meet",
                "Meeting",
                40,
                actions=(
                    StageAction(
                        "meeting",
                        "Discovery meeting",
                        ActionKind.CALENDAR,
                        auto_create=True,
                        activity_kind=ActivityKind.MEETING,
                    ),
                    StageAction("proposal", "Send the proposal"),
                ),
            ),
            Stage("won", "Won", 100, StageKind.WON),
            Stage("lost", "Lost", 0, StageKind.LOST),
        ),
        cancel_pending=CancelPolicy.CANCEL,
    )


class Ids:
    """The id factory of template apps: ``x000042_0000000``."""

    def __init__(self, prefix: str = "x") -> None:
        self._prefix = prefix
        self._next = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._next):06d}{TOKEN}"


def app_for(repository: Repository, ids: Ids | None = None) -> SalesFlow:
    """A SalesFlow on ``repository`` with the benchmark process and a fixed clock; with
    ``ids``, the templates' id factory, and salesflow's own (uuid4) otherwise."""
    app = SalesFlow(repository, clock=FixedClock(NOW), ids=ids)
    if all(p.key != "bench" for p in app.processes()):
        app.define_process(bench_process())
    return app


def owner(index: int, shape: Shape) -> str:
    return f"owner-{index % OWNERS[shape]:02d}"


def add_templates(app: SalesFlow, shape: Shape) -> None:
    """Create the templates of ``shape`` through ``app``."""
    if shape == "actions":
        for j in range(TEMPLATES[shape]):
            created = app.create_opportunity(
                title=f"Deal {j}",
                process="bench",
                customer=Organization(f"org-{j}", f"Customer {j} Ltd"),
                value=Money(Decimal(1000 + 37 * j) + Decimal("0.25"), "USD"),
                expected_close=NOW.date() + dt.timedelta(days=10 + j * 7 % 300),
                owner=owner(j, shape),
            )
            app.change_stage(created.opportunity.id, "meet")
        return
    if shape == "history":
        _add_histories(app)
        return
    stages = [s.key for s in app.process("standard").stages]
    for j in range(TEMPLATES[shape]):
        app.create_opportunity(
            title=f"Deal {j}",
            stage=stages[j % len(stages)],
            customer=Organization(f"org-{j}", f"Customer {j} Ltd"),
            value=Money(Decimal(500 + 113 * j) + Decimal("0.10"), "USD"),
            expected_close=NOW.date() + dt.timedelta(days=j * 11 % 365),
            owner=owner(j, shape),
            description=f"Opportunity number {j} of the benchmark store",
        )


def _add_histories(app: SalesFlow) -> None:
    """Standard-process deals with ten events each: created, moved, revalued, paused
    and resumed, then won, lost or moved on. Each command is an hour after the last."""
    clock = app.clock
    assert isinstance(clock, FixedClock)
    count = TEMPLATES["history"]
    ids: list[str] = []
    for j in range(count):
        ids.append(
            app.create_opportunity(
                title=f"Deal {j}",
                customer=Organization(f"org-{j}", f"Customer {j} Ltd"),
                value=Money(Decimal(500 + 113 * j) + Decimal("0.10"), "USD"),
                expected_close=NOW.date() + dt.timedelta(days=j * 11 % 365),
                owner=owner(j, "history"),
            ).opportunity.id
        )
        clock.advance(dt.timedelta(hours=1))
    steps: list[Callable[[str, int], object]] = [
        lambda id_, j: app.change_stage(id_, "qualification"),
        lambda id_, j: app.update(id_, value=Money(Decimal(600 + 97 * j), "USD")),
        lambda id_, j: app.change_stage(id_, "proposal"),
        lambda id_, j: app.set_probability(id_, 20 + j % 70),
        lambda id_, j: app.update(
            id_, expected_close=NOW.date() + dt.timedelta(days=30 + j * 7 % 200)
        ),
        lambda id_, j: app.pause(id_),
        lambda id_, j: app.resume(id_),
        lambda id_, j: app.update(id_, value=Money(Decimal(700 + 89 * j) + Decimal("0.5"), "USD")),
        lambda id_, j: (
            app.mark_won(id_)
            if j % 3 == 0
            else app.mark_lost(id_, reason=("price", "timing", "competitor")[j % 3])
            if j % 3 == 1
            else app.change_stage(id_, "negotiation")
        ),
    ]
    assert len(steps) == HISTORY_EVENTS - 1
    for step in steps:
        for j, id_ in enumerate(ids):
            step(id_, j)
            clock.advance(dt.timedelta(hours=1))


def copies_for(shape: Shape, count: int) -> int:
    templates = TEMPLATES[shape]
    if count % templates:
        raise ValueError(f"{count} is not a multiple of the {templates} {shape} templates")
    return count // templates


def copy_id(template_id: str, copy: int) -> str:
    return template_id.replace(TOKEN, f"_{copy:07d}")


@contextlib.contextmanager
def scratch() -> Iterator[pathlib.Path]:
    """A temporary folder on the cache's disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="tmp-") as folder:
        yield pathlib.Path(folder)


# -- the key of a store ------------------------------------------------------------


def _template_file(folder: pathlib.Path, shape: Shape) -> pathlib.Path:
    path = folder / f"templates-{shape}.db"
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    try:
        add_templates(app_for(repository, Ids()), shape)
    finally:
        repository.close()
    return path


def _key(template_file: pathlib.Path, shape: Shape, extra: str = "") -> str:
    digest = hashlib.sha256(f"{FORMAT}|{SQLITE_SCHEMA}|{shape}|{extra}".encode())
    connection = sqlite3.connect(template_file)
    try:
        for table in ("processes", "opportunities", "activities", "events"):
            for row in connection.execute(f"SELECT * FROM {table} ORDER BY seq"):
                digest.update(repr(row).encode())
    finally:
        connection.close()
    return digest.hexdigest()[:12]


# -- SQLite ------------------------------------------------------------------------


def sqlite_store(shape: Shape, count: int) -> pathlib.Path:
    """The cached SQLite file holding ``count`` opportunities of ``shape`` in the
    workspace ``WORKSPACE``; built on first use."""
    copies = copies_for(shape, count)
    with scratch() as folder:
        templates = _template_file(folder, shape)
        key = _key(templates, shape)
        target = CACHE / f"{shape}-{count}-{key}.db"
        if target.exists():
            return target
        for stale in CACHE.glob(f"{shape}-{count}-*.db*"):
            stale.unlink()
        print(f"  building {target.name} ({count:,} opportunities, once)", flush=True)
        building = folder / "building.db"
        shutil.copyfile(templates, building)
        _copy_rows_sqlite(building, copies, shape)
        os.replace(building, target)
    return target


def _copy_rows_sqlite(path: pathlib.Path, copies: int, shape: Shape) -> None:
    """Add copies 1 .. ``copies - 1`` of every record of the file (copy 0: itself).
    The token is replaced in every text column (ids, references, JSON)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = DELETE")
        connection.execute("PRAGMA synchronous = OFF")
        names = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if any(c[1] == "workspace" for c in connection.execute(f"PRAGMA table_info({name})"))
        ]
        for table in _tables(names, shape):
            info = list(connection.execute(f"PRAGMA table_info({table})"))
            columns = [(c[1], str(c[2]).upper()) for c in info if c[1] != "seq"]
            texts = [name for name, declared in columns if declared in ("TEXT", "")]
            connection.execute(
                f"CREATE TEMP TABLE template AS SELECT * FROM main.{table} "
                f"WHERE {_holds_token(texts)}"
            )
            (rows,) = connection.execute("SELECT count(*) FROM temp.template").fetchone()
            if not rows:  # nothing of the templates' records: the workspace's own rows
                connection.execute("DROP TABLE temp.template")
                continue
            # Each copy's events come after all those before it in the feed.
            (span,) = connection.execute("SELECT coalesce(max(seq), 0) FROM main.events").fetchone()
            chosen = ", ".join(
                f"replace({name}, '{TOKEN}', printf('_%07d', n.k))"
                if declared in ("TEXT", "")
                else f"position + n.k * {int(span)}"
                if table == "events" and name == "position"
                else name
                for name, declared in columns
            )
            order = ", template.seq" if any(c[1] == "seq" for c in info) else ""
            step = 500
            for first in range(1, copies, step):
                last = min(first + step, copies) - 1
                connection.execute("BEGIN")
                connection.execute(
                    f"WITH RECURSIVE n(k) AS (SELECT ? UNION ALL SELECT k + 1 FROM n "
                    f"WHERE k < ?) INSERT INTO main.{table} ({', '.join(n for n, _ in columns)}) "
                    f"SELECT {chosen} FROM n CROSS JOIN template ORDER BY n.k{order}",
                    (first, last),
                )
                connection.execute("COMMIT")
            connection.execute("DROP TABLE temp.template")
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def _holds_token(columns: list[str]) -> str:
    """A condition true for the rows of the templates' records: a text column holds
    the token (an id, a reference or JSON naming one)."""
    pattern = "'%" + TOKEN.replace("_", "\\_") + "%' ESCAPE '\\'"
    return " OR ".join(f"{c} LIKE {pattern}" for c in columns) or "FALSE"


def template_ids(path: pathlib.Path) -> list[str]:
    """The ids of the template opportunities in a SQLite store, in creation order."""
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT id FROM opportunities WHERE workspace = ? AND id LIKE ? ESCAPE '\\' "
            "ORDER BY seq",
            (WORKSPACE, "%" + TOKEN.replace("_", "\\_")),
        ).fetchall()
    finally:
        connection.close()
    return [id_ for (id_,) in rows]


# -- PostgreSQL --------------------------------------------------------------------


def postgres_store(dsn: str, shape: Shape, count: int) -> str:
    """The schema holding ``count`` opportunities of ``shape`` in the workspace
    ``WORKSPACE`` on the database ``dsn``; built on first use."""
    import psycopg

    from salesflow.postgres import SCHEMA_VERSION as POSTGRES_SCHEMA
    from salesflow.postgres import PostgresRepository

    copies = copies_for(shape, count)
    with scratch() as folder:
        key = _key(_template_file(folder, shape), shape, f"pg{POSTGRES_SCHEMA}")
    prefix = f"sfbench_{shape}_{count}_"
    schema = prefix + key
    with psycopg.connect(dsn, autocommit=True) as connection:
        ready = connection.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'bench_ready'",
            (schema,),
        ).fetchone()
        if ready:
            return schema
        print(f"  building PostgreSQL schema {schema} ({count:,} opportunities, once)")
        stale = connection.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (prefix.replace("_", "\\_") + "%",),
        ).fetchall()
        for (name,) in stale:
            connection.execute(f'DROP SCHEMA "{name}" CASCADE')
    repository = PostgresRepository(dsn, workspace=WORKSPACE, schema=schema)
    try:
        add_templates(app_for(repository, Ids()), shape)
    finally:
        repository.close()
    with psycopg.connect(dsn) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = %s AND column_name = 'workspace'",
                (schema,),
            ).fetchall()
        ]
        for table in _tables(names, shape):
            found = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                (schema, table),
            ).fetchall()
            columns = [name for name, _ in found if name != "seq"]
            kinds: dict[str, str] = {str(name): str(kind) for name, kind in found}
            new = "'_' || lpad(n.k::text, 7, '0')"
            span_row = connection.execute(
                f'SELECT coalesce(max(seq), 0) FROM "{schema}".events'
            ).fetchone()
            span = int(span_row[0]) if span_row else 0
            chosen = ", ".join(
                f"replace({c}::text, '{TOKEN}', {new})::jsonb"
                if kinds[c] == "jsonb"
                else f"replace({c}, '{TOKEN}', {new})"
                if kinds[c] == "text"
                else f"position + n.k * {span}"
                if table == "events" and c == "position"
                else c
                for c in columns
            )
            order = ", template.seq" if "seq" in kinds else ""
            texts = [
                f"{c}::text" if kinds[c] == "jsonb" else c
                for c in columns
                if kinds[c] in ("text", "jsonb")
            ]
            connection.execute(
                f'CREATE TEMP TABLE template AS SELECT * FROM "{schema}".{table} '
                f"WHERE {_holds_token(texts)}"
            )
            found_rows = connection.execute("SELECT count(*) FROM template").fetchone()
            if not found_rows or not found_rows[0]:
                connection.execute("DROP TABLE template")
                continue
            step = 500
            for first in range(1, copies, step):
                last = min(first + step, copies) - 1
                connection.execute(
                    f'INSERT INTO "{schema}".{table} ({", ".join(columns)}) '
                    f"SELECT {chosen} FROM generate_series(%s::int, %s::int) AS n(k) "
                    f"CROSS JOIN template ORDER BY n.k{order}",
                    (first, last),
                )
                connection.commit()
            connection.execute("DROP TABLE template")
            connection.commit()
    with psycopg.connect(dsn, autocommit=True) as connection:
        # The feed's counter goes on after the copies' events.
        connection.execute(
            f'UPDATE "{schema}".event_positions AS p SET position = e.last FROM '
            f'(SELECT workspace, max(position) AS last FROM "{schema}".events '
            "GROUP BY workspace) AS e WHERE e.workspace = p.workspace"
        )
        for table in ("opportunities", "activities", "events"):
            connection.execute(f'VACUUM ANALYZE "{schema}".{table}')
        connection.execute(f'CREATE TABLE "{schema}".bench_ready (built_at timestamptz)')
    return schema


# -- memory ------------------------------------------------------------------------


def memory_store(shape: Shape, count: int) -> InMemoryRepository:
    """An in-memory repository with ``count`` opportunities of ``shape``. The copies
    are the templates with new ids (``attrs.evolve``), committed in change sets."""
    repository = InMemoryRepository(workspace=WORKSPACE)
    add_templates(app_for(repository, Ids()), shape)
    copies = copies_for(shape, count)
    templates = repository.opportunities()
    activities = {o.id: repository.activities(opportunity_id=o.id) for o in templates}
    history = {o.id: repository.history(o.id) for o in templates}
    with_activities = shape == "actions"
    for copy in range(1, copies):
        suffix = f"_{copy:07d}"

        def renamed(value: str, suffix: str = suffix) -> str:
            return value.replace(TOKEN, suffix)

        def maybe(value: str | None, suffix: str = suffix) -> str | None:
            return None if value is None else value.replace(TOKEN, suffix)

        opportunities: list[Opportunity] = []
        new_activities: list[Activity] = []
        events: list[Event] = []
        for template in templates:
            actions = tuple(
                attrs.evolve(a, id=renamed(a.id), activity_id=maybe(a.activity_id))
                for a in template.actions
            )
            opportunities.append(
                attrs.evolve(template, id=renamed(template.id), version=1, actions=actions)
            )
            if with_activities:
                new_activities.extend(
                    attrs.evolve(
                        a,
                        id=renamed(a.id),
                        opportunity_id=maybe(a.opportunity_id),
                        action_id=maybe(a.action_id),
                        version=1,
                    )
                    for a in activities[template.id]
                )
                events.extend(
                    attrs.evolve(e, id=renamed(e.id), opportunity_id=maybe(e.opportunity_id))
                    for e in history[template.id]
                )
        repository.commit(
            ChangeSet(
                opportunities=tuple(opportunities),
                activities=tuple(new_activities),
                events=tuple(events),
            )
        )
    return repository
