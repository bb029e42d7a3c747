"""The benchmark cases, each beside its baseline.

Every case is a function taking the :class:`~benchmarks._support.Size` and returning
its rows; :data:`CASES` names them for ``--only``. A case times salesflow and its
baseline in the same process, interleaved where both are quick, so that both see the
same machine state. Only salesflow's public API is used: ``SalesFlow``, the
repositories and the ``Repository`` port they implement.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import os
import pathlib
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta

from benchmarks._stores import (
    HISTORY_EVENTS,
    HISTORY_SPAN,
    NOW,
    TEMPLATES,
    TOKEN,
    WORKSPACE,
    Ids,
    Shape,
    app_for,
    copy_id,
    memory_store,
    owner,
    postgres_store,
    scratch,
    sqlite_store,
)
from benchmarks._support import (
    CACHE,
    POSTGRES_ENV,
    Row,
    Size,
    Target,
    median,
    postgres_dsn,
    repeat,
    timed,
)
from salesflow import (
    ActionKind,
    ActivityKind,
    InMemoryRepository,
    Money,
    Organization,
    SalesFlow,
    Status,
)
from salesflow.sqlite import SQLiteRepository

Case = Callable[[Size], list[Row]]

BENCH_EXTRA = "install the bench extra: pip install -e '.[bench]'"


def _k(count: int) -> str:
    """1000 -> "1k", 1000000 -> "1M"."""
    if count >= 1_000_000 and count % 1_000_000 == 0:
        return f"{count // 1_000_000}M"
    if count >= 1_000 and count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


def _say(text: str) -> None:
    print(f"  {text}", flush=True)


# -- change_stage in memory vs a pytransitions trigger ---------------------------------


def change_stage(size: Size) -> list[Row]:
    """change_stage with full effects in memory vs one pytransitions trigger.

    Full effects: plan, cancel the stage's planned activity, create the new stage's,
    record history."""
    target = Target("at_most", 1.0)
    label = "change_stage, full effects, memory / pytransitions trigger"
    try:
        from transitions import Machine
    except ImportError:
        return [Row(label, None, None, target, skipped=BENCH_EXTRA)]

    app = app_for(InMemoryRepository(workspace=WORKSPACE))
    deals = max(100, size.command_calls // 20)
    rounds = size.command_calls // deals
    ids = []
    for i in range(deals):
        created = app.create_opportunity(
            title=f"Deal {i}", process="bench", owner=owner(i, "actions")
        )
        ids.append(created.opportunity.id)
        app.change_stage(ids[-1], "meet")

    class Model:
        state: str

    models = [Model() for _ in ids]
    Machine(
        model=models,
        states=["lead", "meet", "won", "lost"],
        transitions=[
            {"trigger": "back_to_lead", "source": "meet", "dest": "lead"},
            {"trigger": "to_meeting", "source": "lead", "dest": "meet"},
        ],
        initial="meet",
        auto_transitions=False,
    )
    triggers: list[Callable[[str], bool]] = [m.trigger for m in models]  # type: ignore[attr-defined]

    ours: list[float] = []
    theirs: list[float] = []
    clock = time.perf_counter
    for r in range(rounds):
        stage, event = ("lead", "back_to_lead") if r % 2 == 0 else ("meet", "to_meeting")
        for id_ in ids:
            start = clock()
            result = app.change_stage(id_, stage)
            ours.append(clock() - start)
        assert len(result.cancelled) == 1, result.notices
        assert len(result.created) == 1, result.notices
        for trigger in triggers:
            start = clock()
            trigger(event)
            theirs.append(clock() - start)
    assert all(m.state == stage for m in models)
    note = f"{len(ours):,} calls each, over {deals:,} opportunities"
    return [Row(label, median(ours), median(theirs), target, note)]


# -- a command per transaction on SQLite vs raw sqlite3 --------------------------------


def commit_sqlite(size: Size) -> list[Row]:
    """A command per transaction on SQLite vs raw sqlite3 writing the same rows.

    The command is a change_stage in the standard process, which writes the
    opportunity's row and one event row; raw sqlite3 writes the same two rows (the ones
    salesflow wrote) in another workspace of the same file (WAL, synchronous=FULL),
    one commit each."""
    target = Target("at_least", 0.5)
    label = "command per transaction, SQLite / raw sqlite3 2-row commit"
    deals = 50
    rounds = max(2, size.commit_calls // deals)
    ours: list[float] = []
    theirs: list[float] = []
    with scratch() as folder:
        path = folder / "commands.db"
        repository = SQLiteRepository(path, workspace="salesflow")
        app = app_for(repository)
        ids = [
            app.create_opportunity(
                title=f"Deal {i}", owner=owner(i, "standard"), value=Money(1000 + i, "USD")
            ).opportunity.id
            for i in range(deals)
        ]
        raw = sqlite3.connect(path, isolation_level=None)
        raw.execute("PRAGMA synchronous = FULL")
        (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal", mode
        opportunity_columns = _columns(raw, "opportunities")
        event_columns = _columns(raw, "events")
        _copy_workspace(raw, "opportunities", opportunity_columns, "salesflow", "raw")
        updated = [c for c in opportunity_columns if c not in ("workspace", "id")]
        update = (
            f"UPDATE opportunities SET {', '.join(f'{c} = ?' for c in updated)} "
            "WHERE workspace = 'raw' AND id = ? AND version = ?"
        )
        insert = (
            f"INSERT INTO events ({', '.join(event_columns)}) "
            f"VALUES ({', '.join('?' for _ in event_columns)})"
        )
        clock = time.perf_counter
        for r in range(rounds):
            stage = "qualification" if r % 2 == 0 else "lead"
            (last_event,) = raw.execute("SELECT max(seq) FROM events").fetchone()
            for id_ in ids:
                start = clock()
                app.change_stage(id_, stage)
                ours.append(clock() - start)
            # The rows this block wrote, replayed by raw sqlite3 in the raw workspace.
            rows = {
                row[0]: row[1:]
                for row in raw.execute(
                    f"SELECT id, {', '.join(updated)} FROM opportunities "
                    "WHERE workspace = 'salesflow'"
                )
            }
            events = raw.execute(
                f"SELECT {', '.join(event_columns)} FROM events WHERE seq > ? ORDER BY seq",
                (last_event,),
            ).fetchall()
            assert len(events) == len(ids), len(events)
            workspace_at = event_columns.index("workspace")
            version_at = updated.index("version")
            for written in events:
                event = tuple("raw" if i == workspace_at else v for i, v in enumerate(written))
                id_ = event[event_columns.index("opportunity_id")]
                row = rows[id_]
                start = clock()
                raw.execute("BEGIN IMMEDIATE")
                cursor = raw.execute(update, (*row, id_, row[version_at] - 1))
                raw.execute(insert, event)
                raw.execute("COMMIT")
                theirs.append(clock() - start)
                assert cursor.rowcount == 1
        raw.close()
        repository.close()
    note = f"{len(ours):,} commits each"
    return [Row(label, median(ours), median(theirs), target, note)]


def _columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in connection.execute(f"PRAGMA table_info({table})") if row[1] != "seq"]


def _copy_workspace(
    connection: sqlite3.Connection, table: str, columns: list[str], source: str, copy: str
) -> None:
    chosen = ", ".join("?" if c == "workspace" else c for c in columns)
    connection.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {chosen} FROM {table} "
        "WHERE workspace = ?",
        (copy, source),
    )


# -- change_stage at N stored ----------------------------------------------------------


def _moves(
    apps: Sequence[SalesFlow], ids: Sequence[Sequence[str]], calls: int
) -> list[list[float]]:
    """Time change_stage on each app, interleaved: each chosen opportunity moves from
    Meeting to Lead and back, both with full effects (a cancelled and a created activity)."""
    samples: list[list[float]] = [[] for _ in apps]
    clock = time.perf_counter
    for i in range(calls // 2):
        for app, chosen, found in zip(apps, ids, samples, strict=True):
            id_ = chosen[i]
            for stage in ("lead", "meet"):
                start = clock()
                result = app.change_stage(id_, stage)
                found.append(clock() - start)
                assert len(result.cancelled) == 1, result.notices
                assert len(result.created) == 1, result.notices
    return samples


def _pick(count: int, how_many: int, seed: int | None = None) -> list[str]:
    """``how_many`` distinct opportunities of an ``actions`` store of ``count``."""
    templates = _template_ids()
    chooser = random.Random(seed)
    picked = chooser.sample(range(count), how_many)
    return [copy_id(templates[n % len(templates)], n // len(templates)) for n in picked]


_TEMPLATE_IDS: list[str] = []


def _template_ids() -> list[str]:
    if not _TEMPLATE_IDS:
        repository = InMemoryRepository(workspace=WORKSPACE)
        from benchmarks._stores import add_templates

        add_templates(app_for(repository, Ids()), "actions")
        _TEMPLATE_IDS.extend(o.id for o in repository.opportunities())
        assert len(_TEMPLATE_IDS) == TEMPLATES["actions"]
        assert all(id_.endswith(TOKEN) for id_ in _TEMPLATE_IDS)
    return _TEMPLATE_IDS


def _stored_row(where: str, size: Size, times: list[list[float]]) -> Row:
    small, large = (median(t) for t in times)
    label = f"change_stage at {_k(size.stored_large)} / at {_k(size.stored_small)} stored, {where}"
    note = f"{len(times[0]):,} calls per store"
    return Row(label, large, small, Target("at_most", 1.2), note)


def stored_memory(size: Size) -> list[Row]:
    """change_stage at the large store size vs at the small one, in memory."""
    apps = []
    for count in (size.stored_small, size.stored_large):
        _say(f"building an in-memory store of {count:,}")
        apps.append(app_for(memory_store("actions", count)))
    half = size.stored_calls // 2
    ids = [_pick(size.stored_small, half), _pick(size.stored_large, half)]
    return [_stored_row("memory", size, _moves(apps, ids, size.stored_calls))]


def stored_sqlite(size: Size) -> list[Row]:
    """change_stage at the large store size vs at the small one, on SQLite (copies)."""
    with scratch() as folder:
        repositories = []
        for count in (size.stored_small, size.stored_large):
            cached = sqlite_store("actions", count)
            path = folder / cached.name
            shutil.copyfile(cached, path)  # the cached file stays as built
            repositories.append(SQLiteRepository(path, workspace=WORKSPACE))
        half = size.stored_calls // 2
        ids = [_pick(size.stored_small, half), _pick(size.stored_large, half)]
        try:
            times = _moves([app_for(r) for r in repositories], ids, size.stored_calls)
        finally:
            for repository in repositories:
                repository.close()
    return [_stored_row("SQLite", size, times)]


def stored_postgres(size: Size) -> list[Row]:
    """change_stage at the large store size vs at the small one, on PostgreSQL."""
    dsn = postgres_dsn()
    if dsn is None:
        label = f"change_stage at {_k(size.stored_large)} / at {_k(size.stored_small)}, PostgreSQL"
        return [Row(label, None, None, Target("at_most", 1.2), skipped=f"{POSTGRES_ENV} not set")]
    from salesflow.postgres import PostgresRepository

    repositories = []
    for count in (size.stored_small, size.stored_large):
        schema = postgres_store(dsn, "actions", count)
        repositories.append(PostgresRepository(dsn, workspace=WORKSPACE, schema=schema))
    half = size.stored_calls // 2
    # Each moved opportunity ends in the stage it started in, with two more
    # activities and six more events; other opportunities each run.
    ids = [_pick(size.stored_small, half), _pick(size.stored_large, half)]
    try:
        times = _moves([app_for(r) for r in repositories], ids, size.stored_calls)
    finally:
        for repository in repositories:
            repository.close()
    return [_stored_row("PostgreSQL", size, times)]


# -- create_opportunities into SQLite --------------------------------------------------


def create_opportunities(size: Size) -> list[Row]:
    """create_opportunities into SQLite vs raw executemany and SQLAlchemy ORM add_all.

    Into a new file each; the baselines write the rows salesflow wrote, in batches of
    1000 opportunities (with their events), one transaction each."""
    count = size.bulk
    label = f"create_opportunities {_k(count)}, SQLite"
    raw_target = Target("at_least", 0.5)
    orm_target = Target("at_least", 4.0)
    try:
        import sqlalchemy
        from sqlalchemy.orm import Session
    except ImportError:
        return [
            Row(f"{label} / raw executemany", None, None, raw_target, skipped=BENCH_EXTRA),
            Row(f"{label} / SQLAlchemy ORM add_all", None, None, orm_target, skipped=BENCH_EXTRA),
        ]
    batch = 1000
    items: list[dict[str, Any]] = [
        {
            "title": f"Imported deal {i}",
            "customer": Organization(f"org-{i}", f"Customer {i} Ltd"),
            "value": Money(Decimal(500 + i % 997) + Decimal("0.10"), "USD"),
            "expected_close": NOW.date() + dt.timedelta(days=i % 365),
            "owner": owner(i, "standard"),
        }
        for i in range(count)
    ]
    bulk = getattr(SalesFlow, "create_opportunities", None)
    provisional = bulk is None
    rounds = 3 if count <= 10_000 else 1
    ours: list[float] = []
    raws: list[float] = []
    orms: list[float] = []
    for _ in range(rounds):
        with scratch() as folder:
            path = folder / "salesflow.db"
            repository = SQLiteRepository(path, workspace=WORKSPACE)
            app = app_for(repository)
            gc.collect()
            start = time.perf_counter()
            if provisional:
                for item in items:
                    app.create_opportunity(**item)
            else:
                result = app.create_opportunities(items, batch_size=batch)
                assert not result.failed, dict(list(result.failed.items())[:3])
            ours.append(time.perf_counter() - start)
            repository.close()
            batches = _written_batches(path, batch)

            raw_path = folder / "raw.db"
            SQLiteRepository(raw_path, workspace=WORKSPACE).close()  # the same schema
            raw = sqlite3.connect(raw_path, isolation_level=None)
            raw.execute("PRAGMA synchronous = FULL")
            raw.execute("PRAGMA foreign_keys = ON")
            statements = {
                table: f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
                for table, columns in batches[0][0].items()
            }
            gc.collect()
            start = time.perf_counter()
            for _, rows in batches:
                raw.execute("BEGIN IMMEDIATE")
                for table, table_rows in rows.items():
                    raw.executemany(statements[table], table_rows)
                raw.execute("COMMIT")
            raws.append(time.perf_counter() - start)
            raw.close()

            orm_path = folder / "orm.db"
            SQLiteRepository(orm_path, workspace=WORKSPACE).close()
            engine = sqlalchemy.create_engine(f"sqlite:///{orm_path}")
            sqlalchemy.event.listen(engine, "connect", _sqlite_pragmas)
            classes = _orm_classes(orm_path, list(batches[0][0]))
            gc.collect()
            start = time.perf_counter()
            for names, rows in batches:
                with Session(engine) as session:
                    for table, table_rows in rows.items():
                        mapped = classes[table]
                        columns = names[table]
                        session.add_all(
                            [mapped(**dict(zip(columns, row, strict=True))) for row in table_rows]
                        )
                    session.commit()
            orms.append(time.perf_counter() - start)
            engine.dispose()
    note = (
        "provisional: SalesFlow.create_opportunities does not exist yet; "
        "create_opportunity in a loop"
        if provisional
        else f"batches of {batch}; {rounds} run(s)"
    )
    return [
        Row(f"{label} / raw executemany", median(ours), median(raws), raw_target, note),
        Row(f"{label} / SQLAlchemy ORM add_all", median(ours), median(orms), orm_target, note),
    ]


class _Mapped:
    """A row as an ORM object: each column an attribute."""

    def __init__(self, **columns: Any) -> None:
        for name, value in columns.items():
            setattr(self, name, value)


def _orm_classes(path: pathlib.Path, tables: list[str]) -> dict[str, type[_Mapped]]:
    """ORM classes mapped (imperatively) on the tables of the file salesflow made: every
    column as the file declares it, ``seq`` the autoincrementing primary key."""
    import sqlalchemy
    from sqlalchemy.orm import registry

    metadata = sqlalchemy.MetaData()
    mapper = registry()
    classes: dict[str, type[_Mapped]] = {}
    connection = sqlite3.connect(path)
    try:
        for table in tables:
            columns = [sqlalchemy.Column("seq", sqlalchemy.Integer, primary_key=True)]
            for _, name, declared, not_null, _, _ in connection.execute(
                f"PRAGMA table_info({table})"
            ):
                if name != "seq":
                    kind: sqlalchemy.types.TypeEngine[Any] = (
                        sqlalchemy.Integer() if declared.upper() == "INTEGER" else sqlalchemy.Text()
                    )
                    columns.append(sqlalchemy.Column(name, kind, nullable=not not_null))
            mapped = type(f"Orm_{table}", (_Mapped,), {})
            mapper.map_imperatively(mapped, sqlalchemy.Table(table, metadata, *columns))
            classes[table] = mapped
    finally:
        connection.close()
    return classes


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")


Batch = tuple[dict[str, list[str]], dict[str, list[tuple[Any, ...]]]]


def _written_batches(path: pathlib.Path, batch: int) -> list[Batch]:
    """The opportunity and event rows salesflow wrote, in batches of ``batch``
    opportunities with their events: {table: columns}, {table: rows}."""
    connection = sqlite3.connect(path)
    try:
        names = {t: _columns(connection, t) for t in ("opportunities", "events")}
        opportunities = connection.execute(
            f"SELECT {', '.join(names['opportunities'])} FROM opportunities ORDER BY seq"
        ).fetchall()
        events = connection.execute(
            f"SELECT {', '.join(names['events'])} FROM events "
            "WHERE opportunity_id IS NOT NULL ORDER BY seq"
        ).fetchall()
    finally:
        connection.close()
    by_opportunity: dict[str, list[tuple[Any, ...]]] = {}
    at = names["events"].index("opportunity_id")
    for event in events:
        by_opportunity.setdefault(event[at], []).append(event)
    id_at = names["opportunities"].index("id")
    batches: list[Batch] = []
    for first in range(0, len(opportunities), batch):
        chunk = opportunities[first : first + batch]
        chunk_events = [e for o in chunk for e in by_opportunity.get(o[id_at], ())]
        batches.append((names, {"opportunities": chunk, "events": chunk_events}))
    return batches


# -- load from SQLite ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class PlainAction:
    id: str
    stage: str
    key: str
    title: str
    kind: ActionKind
    required: bool
    auto_create: bool
    activity_kind: ActivityKind
    due_after: relativedelta
    track_outcome: bool
    template: str | None
    event: str | None
    completed_at: dt.datetime | None
    activity_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class PlainOpportunity:
    """What an ``Opportunity`` holds, as a hand-written decoder would build it."""

    id: str
    version: int
    process: str
    stage: str
    stage_probability: int
    value: Money
    created_at: dt.datetime
    stage_entered_at: dt.datetime
    title: str | None
    description: str
    customer: tuple[str, str, str] | None
    related: tuple[tuple[str, str, str], ...]
    annual_value: Money | None
    probability_override: int | None
    status: Status
    expected_close: dt.date | None
    pay_date: dt.date | None
    closed_on: dt.date | None
    owner: str | None
    team: tuple[str, ...]
    external_ref: str | None
    avatar: str | None
    loss_reason: str | None
    notes: tuple[tuple[str, str | None, dt.datetime], ...]
    line_items: tuple[tuple[str, Decimal, Money, Decimal, str | None], ...]
    actions: tuple[PlainAction, ...]


def _money(data: Any) -> Money | None:
    return None if data is None else Money(data["amount"], data["currency"])


def _moment(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _day(text: str | None) -> dt.date | None:
    return None if text is None else dt.date.fromisoformat(text)


def _plain(data: dict[str, Any]) -> PlainOpportunity:
    customer = data["customer"]
    value = _money(data["value"])
    created_at = _moment(data["created_at"])
    entered_at = _moment(data["stage_entered_at"])
    assert value is not None
    assert created_at is not None
    assert entered_at is not None
    return PlainOpportunity(
        id=data["id"],
        version=data["version"],
        process=data["process"],
        stage=data["stage"],
        stage_probability=data["stage_probability"],
        value=value,
        created_at=created_at,
        stage_entered_at=entered_at,
        title=data["title"],
        description=data["description"],
        customer=None if customer is None else (customer["type"], customer["id"], customer["name"]),
        related=tuple((r["role"], r["id"], r["name"]) for r in data["related"]),
        annual_value=_money(data["annual_value"]),
        probability_override=data["probability_override"],
        status=Status(data["status"]),
        expected_close=_day(data["expected_close"]),
        pay_date=_day(data["pay_date"]),
        closed_on=_day(data["closed_on"]),
        owner=data["owner"],
        team=tuple(data["team"]),
        external_ref=data["external_ref"],
        avatar=data["avatar"],
        loss_reason=data["loss_reason"],
        notes=tuple((n["text"], n["author"], _moment(n["at"])) for n in data["notes"]),  # type: ignore[misc]
        line_items=tuple(
            (
                i["description"],
                Decimal(i["quantity"]),
                Money(i["unit_price"]["amount"], i["unit_price"]["currency"]),
                Decimal(i["discount_percent"]),
                i["service_code"],
            )
            for i in data["line_items"]
        ),
        actions=tuple(
            PlainAction(
                id=a["id"],
                stage=a["stage"],
                key=a["spec"]["key"],
                title=a["spec"]["title"],
                kind=ActionKind(a["spec"]["kind"]),
                required=a["spec"]["required"],
                auto_create=a["spec"]["auto_create"],
                activity_kind=ActivityKind(a["spec"]["activity_kind"]),
                due_after=relativedelta(**a["spec"]["due_after"]),
                track_outcome=a["spec"]["track_outcome"],
                template=a["spec"]["template"],
                event=a["spec"]["event"],
                completed_at=_moment(a["completed_at"]),
                activity_id=a["activity_id"],
            )
            for a in data["actions"]
        ),
    )


def load_sqlite(size: Size) -> list[Row]:
    """Loading every opportunity from SQLite vs raw fetchall building equal objects.

    salesflow reads through ``Repository.opportunities()``; the baseline decodes the
    JSON into frozen dataclasses holding the same typed values."""
    count = size.load
    label = f"load {_k(count)} opportunities, SQLite / raw fetchall + objects"
    path = sqlite_store("actions", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    raw = sqlite3.connect(path)

    def ours() -> None:
        assert len(repository.opportunities()) == count

    def theirs() -> None:
        rows = raw.execute(
            "SELECT id, version, data FROM opportunities WHERE workspace = ? ORDER BY seq",
            (WORKSPACE,),
        ).fetchall()
        assert len([_plain(json.loads(data)) for _, _, data in rows]) == count

    ours_times: list[float] = []
    theirs_times: list[float] = []
    spent = 0.0
    while len(ours_times) < 3 or (len(ours_times) < 7 and spent < size.budget):
        gc.collect()
        ours_times.append(timed(ours))
        gc.collect()
        theirs_times.append(timed(theirs))
        spent += ours_times[-1] + theirs_times[-1]
    raw.close()
    repository.close()
    note = f"{len(ours_times)} runs each; 5 actions per opportunity"
    return [Row(label, median(ours_times), median(theirs_times), Target("at_least", 0.5), note)]


# -- search and pipeline ---------------------------------------------------------------


def search_sqlite(size: Size) -> list[Row]:
    """search(owner=..., limit=50) on SQLite vs the raw page query on the same file."""
    count = size.query
    label = f"search(owner=..., limit=50) at {_k(count)}, SQLite / raw SELECT LIMIT 50"
    path = sqlite_store("standard", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    app = app_for(repository)
    raw = sqlite3.connect(path)
    who = owner(7, "standard")
    pages: list[list[str]] = []

    def ours() -> None:
        pages.append([o.id for o in app.search(owner=who, limit=50).items])

    def theirs() -> None:
        rows = raw.execute(
            "SELECT id, version, data FROM opportunities WHERE workspace = ? AND owner = ? "
            "ORDER BY expected_close, id LIMIT 50",
            (WORKSPACE, who),
        ).fetchall()
        pages.append([id_ for id_, _, _ in rows])

    ours_times = repeat(ours, at_least=1, at_most=5, budget=size.budget)
    theirs_times = repeat(theirs, at_least=5, at_most=100, budget=5.0)
    same = pages[0] == pages[-1]
    raw.close()
    repository.close()
    note = f"{len(ours_times)} / {len(theirs_times)} runs; " + (
        "the same page" if same else "PAGES DIFFER"
    )
    return [Row(label, median(ours_times), median(theirs_times), Target("at_most", 2.0), note)]


_GROUP_BY = (
    "SELECT stage, value_currency, count(*), sum(value_amount) FROM {table} "
    "WHERE workspace = {mark} AND process = {mark} AND status <> 'paused' "
    "GROUP BY stage, value_currency"
)


def pipeline_sqlite(size: Size) -> list[Row]:
    """pipeline() on SQLite vs a raw GROUP BY over the same rows."""
    count = size.query
    label = f"pipeline() at {_k(count)}, SQLite / raw GROUP BY"
    path = sqlite_store("standard", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    app = app_for(repository)
    raw = sqlite3.connect(path)
    query = _GROUP_BY.format(table="opportunities", mark="?")
    counts: list[int] = []

    def ours() -> None:
        counts.append(sum(s.count for s in app.pipeline("standard").stages))

    def theirs() -> None:
        counts.append(sum(n for _, _, n, _ in raw.execute(query, (WORKSPACE, "standard"))))

    ours_times = repeat(ours, at_least=1, at_most=5, budget=size.budget)
    theirs_times = repeat(theirs, at_least=3, at_most=20, budget=size.budget / 3)
    raw.close()
    repository.close()
    note = f"{len(ours_times)} / {len(theirs_times)} runs; counts " + (
        "agree" if len(set(counts)) == 1 else f"DIFFER {sorted(set(counts))}"
    )
    return [Row(label, median(ours_times), median(theirs_times), Target("at_most", 1.5), note)]


def pipeline_postgres(size: Size) -> list[Row]:
    """pipeline() on PostgreSQL vs a raw GROUP BY over the same rows."""
    count = size.query
    label = f"pipeline() at {_k(count)}, PostgreSQL / raw GROUP BY"
    target = Target("at_most", 1.5)
    dsn = postgres_dsn()
    if dsn is None:
        return [Row(label, None, None, target, skipped=f"{POSTGRES_ENV} not set")]
    import psycopg

    from salesflow.postgres import PostgresRepository

    schema = postgres_store(dsn, "standard", count)
    repository = PostgresRepository(dsn, workspace=WORKSPACE, schema=schema)
    app = app_for(repository)
    raw = psycopg.connect(dsn, autocommit=True)
    query = _GROUP_BY.format(table=f'"{schema}".opportunities', mark="%s")
    counts: list[int] = []

    def ours() -> None:
        counts.append(sum(s.count for s in app.pipeline("standard").stages))

    def theirs() -> None:
        rows = raw.execute(query, (WORKSPACE, "standard")).fetchall()
        counts.append(sum(n for _, _, n, _ in rows))

    ours_times = repeat(ours, at_least=1, at_most=5, budget=size.budget)
    theirs_times = repeat(theirs, at_least=3, at_most=20, budget=size.budget / 3)
    raw.close()
    repository.close()
    note = f"{len(ours_times)} / {len(theirs_times)} runs; counts " + (
        "agree" if len(set(counts)) == 1 else f"DIFFER {sorted(set(counts))}"
    )
    return [Row(label, median(ours_times), median(theirs_times), target, note)]


def pipeline_memory(size: Size) -> list[Row]:
    """pipeline() in memory vs a plain loop summing Decimal amounts per stage.

    The loop counts and sums per stage over the same opportunity objects."""
    count = size.query
    label = f"pipeline() at {_k(count)}, memory / Decimal sum loop"
    _say(f"building an in-memory store of {count:,}")
    repository = memory_store("standard", count)
    app = app_for(repository)
    opportunities = repository.opportunities(process="standard")
    counts: list[int] = []

    def ours() -> None:
        counts.append(sum(s.count for s in app.pipeline("standard").stages))

    def theirs() -> None:
        number: dict[str, int] = {}
        total: dict[str, Decimal] = {}
        zero = Decimal(0)
        for o in opportunities:
            if o.status is Status.PAUSED:
                continue
            number[o.stage] = number.get(o.stage, 0) + 1
            total[o.stage] = total.get(o.stage, zero) + o.value.amount
        counts.append(sum(number.values()))

    ours_times: list[float] = []
    theirs_times: list[float] = []
    spent = 0.0
    while len(ours_times) < 3 or (len(ours_times) < 11 and spent < size.budget):
        ours_times.append(timed(ours))
        theirs_times.append(timed(theirs))
        spent += ours_times[-1] + theirs_times[-1]
    note = f"{len(ours_times)} runs each; counts " + (
        "agree" if len(set(counts)) == 1 else f"DIFFER {sorted(set(counts))}"
    )
    target = Target("at_most", 3.0, seconds=1.0)
    return [Row(label, median(ours_times), median(theirs_times), target, note)]


# -- import salesflow ------------------------------------------------------------------

_LIST_DEPENDENCIES = """
import sys
before = set(sys.modules)
import salesflow
for name in sys.modules:
    if name not in before and name.partition(".")[0] != "salesflow":
        print(name)
"""

_TIME_IMPORTS = """
import importlib, sys, time
names = sys.argv[1:]
start = time.perf_counter()
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
print(time.perf_counter() - start)
"""


#: Compiled modules for the import case, as an installed package has them: pip
#: compiles the dependencies' bytecode when it installs them, so salesflow's is
#: written here once (outside the source tree) rather than never, as it would be
#: under PYTHONDONTWRITEBYTECODE.
_BYTECODE = CACHE / "pycache"


def _python(code: str, *arguments: str) -> str:
    environment = {
        name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"
    }
    environment["PYTHONPYCACHEPREFIX"] = str(_BYTECODE)
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return done.stdout


def import_time(size: Size) -> list[Row]:
    """import salesflow in a fresh process vs importing its dependencies there.

    The baseline imports every module ``import salesflow`` brings in (its dependencies
    and the standard library modules they and it use), in the order it loads them.
    Both are timed inside the process, leaving the interpreter's start-up out."""
    dependencies = _python(_LIST_DEPENDENCIES).split()  # also writes the bytecode
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(size.imports):
        ours.append(float(_python(_TIME_IMPORTS, "salesflow")))
        theirs.append(float(_python(_TIME_IMPORTS, *dependencies)))
    top = sorted({d.partition(".")[0] for d in dependencies if not d.startswith("_")})
    third_party = [t for t in top if t not in sys.stdlib_module_names]
    note = (
        f"{size.imports} fresh processes each; baseline: {len(dependencies)} modules, "
        f"third-party: {', '.join(third_party)}"
    )
    label = "import salesflow, fresh process / importing its dependencies"
    return [Row(label, median(ours), median(theirs), Target("at_most", 1.3), note)]


# -- memory per opportunity ------------------------------------------------------------


def memory_per_opportunity(size: Size) -> list[Row]:
    """Memory per in-memory opportunity, measured with tracemalloc.

    Each opportunity has 5 actions, 2 activities (one cancelled, one planned) and its
    history (5 events)."""
    count = size.memory
    label = "memory per opportunity (5 actions, 2 activities, history)"
    repository = InMemoryRepository(workspace=WORKSPACE)
    app = app_for(repository)

    def one(i: int) -> None:
        created = app.create_opportunity(
            title=f"Deal {i}",
            process="bench",
            customer=Organization(f"org-{i}", f"Customer {i} Ltd"),
            value=Money(Decimal(1000 + i), "USD"),
            expected_close=NOW.date() + dt.timedelta(days=30),
            owner=owner(i, "actions"),
        )
        app.change_stage(created.opportunity.id, "meet")

    one(-1)  # caches, lazy imports
    tracemalloc.start()
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    for i in range(count):
        one(i)
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    stored = repository.opportunities()
    assert len(stored) == count + 1
    sample = stored[-1]
    assert len(sample.actions) == 5, len(sample.actions)
    assert len(repository.activities(opportunity_id=sample.id)) == 2
    note = f"{count:,} opportunities, {len(repository.history(sample.id))} events each"
    return [Row(label, (after - before) / count, None, Target("bytes", 2048), note)]


# -- reports on SQLite ----------------------------------------------------------------

_FORECAST_SQL = (
    "SELECT substr({day}, 1, 7), value_currency, count(*), sum(value_whole), "
    "sum(value_micro), sum(value_whole * probability), sum(value_micro * probability) "
    "FROM opportunities WHERE workspace = ? AND status = '{status}' "
    "AND {day} >= ? AND {day} <= ? GROUP BY 1, 2"
)


def forecast_sqlite(size: Size) -> list[Row]:
    """forecast(group_by="month") on SQLite vs the raw GROUP BYs of the same answer.

    Both sum the open deals expected to close in the half year by month, and the deals
    won in it; the raw side runs the two statements and nothing else."""
    count = size.query
    label = f"forecast(group_by='month') at {_k(count)}, SQLite / raw GROUP BY"
    path = sqlite_store("standard", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    app = app_for(repository)
    raw = sqlite3.connect(path)
    start, end = NOW.date(), NOW.date() + dt.timedelta(days=182)
    bounds = (WORKSPACE, start.isoformat(), end.isoformat())
    counts: list[int] = []

    def ours() -> None:
        found = app.forecast(start=start, end=end, currency="USD", group_by="month")
        counts.append(found.count + found.won_count)

    def theirs() -> None:
        total = 0
        for status, day in (("open", "expected_close"), ("won", "closed_on")):
            statement = _FORECAST_SQL.format(status=status, day=day)
            total += sum(row[2] for row in raw.execute(statement, bounds))
        counts.append(total)

    ours_times = repeat(ours, at_least=3, at_most=20, budget=size.budget)
    theirs_times = repeat(theirs, at_least=3, at_most=20, budget=size.budget / 3)
    raw.close()
    repository.close()
    note = f"{len(ours_times)} / {len(theirs_times)} runs; counts " + (
        "agree" if len(set(counts)) == 1 else f"DIFFER {sorted(set(counts))}"
    )
    return [Row(label, median(ours_times), median(theirs_times), Target("at_most", 2.0), note)]


_CLOSED_SQL = (
    "SELECT id, status, value_currency, value_amount, created_at, closed_on, "
    "CASE WHEN status = 'lost' THEN json_extract(data, '$.loss_reason') END "
    "FROM opportunities WHERE workspace = ? AND process = 'standard' "
    "AND status IN ('won', 'lost')"
)
_PATHS_SQL = (
    "SELECT e.opportunity_id, e.at, CASE e.kind WHEN 'created' THEN "
    "json_extract(e.data, '$.details.stage') ELSE json_extract(e.data, '$.details.to') END "
    "FROM events e JOIN opportunities o ON o.workspace = e.workspace "
    "AND o.id = e.opportunity_id WHERE o.workspace = ? AND o.process = 'standard' "
    "AND o.status IN ('won', 'lost') AND e.workspace = ? "
    "AND e.kind IN ('created', 'stage_changed') ORDER BY e.seq"
)


def analytics_sqlite(size: Size) -> list[Row]:
    """analytics() on SQLite vs raw sqlite3 reading the rows the answer is made of.

    The store holds deals with ten events each, a third won and a third lost. The raw
    side fetches the closed deals' columns and the stage each of their stage events
    entered -- what the win rate, values, cycle, conversion, days in stage and stage
    win rates are computed from -- without computing them."""
    count = size.query
    label = f"analytics() at {_k(count)}, SQLite / raw reads of its rows"
    path = sqlite_store("history", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    app = app_for(repository)
    raw = sqlite3.connect(path)
    counts: list[int] = []

    def ours() -> None:
        counts.append(app.analytics("standard").closed)

    def theirs() -> None:
        deals = raw.execute(_CLOSED_SQL, (WORKSPACE,)).fetchall()
        raw.execute(_PATHS_SQL, (WORKSPACE, WORKSPACE)).fetchall()
        counts.append(len(deals))

    ours_times = repeat(ours, at_least=1, at_most=5, budget=size.budget)
    theirs_times = repeat(theirs, at_least=1, at_most=5, budget=size.budget / 3)
    raw.close()
    repository.close()
    note = f"{len(ours_times)} / {len(theirs_times)} runs; closed deals " + (
        "agree" if len(set(counts)) == 1 else f"DIFFER {sorted(set(counts))}"
    )
    return [Row(label, median(ours_times), median(theirs_times), Target("at_most", 2.0), note)]


def pipeline_as_of_sqlite(size: Size) -> list[Row]:
    """pipeline(as_of=...) on SQLite vs the live pipeline() of the same store.

    Each opportunity has ten events. The first row's moment is halfway through the
    history, so half the events (five per deal) were recorded after it; the second
    row's is a tenth of the history before its end (one event per deal after it);
    the third's a hundredth (one event each for a tenth of the deals). The cost is
    the live pipeline's plus that of the deals changed after the moment."""
    count = size.history
    path = sqlite_store("history", count)
    repository = SQLiteRepository(path, workspace=WORKSPACE)
    app = app_for(repository)
    rows = []
    moments = (
        ("1/2", NOW + HISTORY_SPAN / 2),
        ("1/10", NOW + HISTORY_SPAN * 9 / 10),
        ("1/100", NOW + HISTORY_SPAN * 99 / 100),
    )
    for share, when in moments:
        label = (
            f"pipeline(as_of=...) at {_k(count)} / {_k(count * HISTORY_EVENTS)} events, "
            f"{share} of them later, SQLite / live pipeline()"
        )
        counts: list[int] = []

        def ours(moment: dt.datetime = when, counts: list[int] = counts) -> None:
            found = app.pipeline("standard", as_of=moment)
            counts.append(sum(s.count for s in found.stages) + found.paused)

        def theirs(counts: list[int] = counts) -> None:
            found = app.pipeline("standard")
            counts.append(sum(s.count for s in found.stages) + found.paused)

        ours_times = repeat(ours, at_least=1, at_most=5, budget=size.budget)
        theirs_times = repeat(theirs, at_least=3, at_most=20, budget=size.budget / 3)
        note = f"{len(ours_times)} / {len(theirs_times)} runs; every deal " + (
            "counted" if len(set(counts)) == 1 else f"COUNTS DIFFER {sorted(set(counts))}"
        )
        rows.append(
            Row(label, median(ours_times), median(theirs_times), Target("at_most", 5.0), note)
        )
    repository.close()
    return rows


_FORECAST_PG = (
    "SELECT to_char({day}, 'YYYY-MM'), value_currency, count(*), sum(value_amount), "
    "sum(value_amount * probability) FROM {table} WHERE workspace = %s "
    "AND status = '{status}' AND {day} >= %s AND {day} <= %s GROUP BY 1, 2"
)
_CLOSED_PG = (
    "SELECT id, status, value_currency, value_amount, created_at, closed_on, "
    "CASE WHEN status = 'lost' THEN data #>> '{{loss_reason}}' END FROM {o} "
    "WHERE workspace = %s AND process = 'standard' AND status IN ('won', 'lost')"
)
_PATHS_PG = (
    "SELECT e.opportunity_id, e.at, CASE e.kind WHEN 'created' THEN "
    "e.data #>> '{{details,stage}}' ELSE e.data #>> '{{details,to}}' END "
    "FROM {e} e JOIN {o} o ON o.workspace = e.workspace AND o.id = e.opportunity_id "
    "WHERE o.workspace = %s AND o.process = 'standard' AND o.status IN ('won', 'lost') "
    "AND e.workspace = %s AND e.kind IN ('created', 'stage_changed') ORDER BY e.seq"
)


def _postgres_app(shape: Shape, count: int) -> tuple[SalesFlow, Any, str] | None:
    """An app on the PostgreSQL store of ``shape``, a raw connection, and its schema."""
    dsn = postgres_dsn()
    if dsn is None:
        return None
    import psycopg

    from salesflow.postgres import PostgresRepository

    schema = postgres_store(dsn, shape, count)
    repository = PostgresRepository(dsn, workspace=WORKSPACE, schema=schema)
    return app_for(repository), psycopg.connect(dsn, autocommit=True), schema


def reports_postgres(size: Size) -> list[Row]:
    """forecast() and analytics() on PostgreSQL beside raw SQL of the same answer, and
    pipeline(as_of=...) beside the live pipeline() (as the SQLite cases)."""
    count, deals = size.query, size.history
    labels = (
        f"forecast(group_by='month') at {_k(count)}, PostgreSQL / raw GROUP BY",
        f"analytics() at {_k(count)}, PostgreSQL / raw reads of its rows",
        f"pipeline(as_of=...) at {_k(deals)} / {_k(deals * HISTORY_EVENTS)} events, "
        "1/2 of them later, PostgreSQL / live pipeline()",
    )
    targets = (Target("at_most", 2.0), Target("at_most", 2.0), Target("at_most", 5.0))
    if postgres_dsn() is None:
        return [
            Row(label, None, None, target, skipped=f"{POSTGRES_ENV} not set")
            for label, target in zip(labels, targets, strict=True)
        ]
    rows = []
    start, end = NOW.date(), NOW.date() + dt.timedelta(days=182)

    opened = _postgres_app("standard", count)
    assert opened is not None
    app, raw, schema = opened
    table = f'"{schema}".opportunities'

    def forecast_ours() -> None:
        app.forecast(start=start, end=end, currency="USD", group_by="month")

    def forecast_theirs() -> None:
        for status, day in (("open", "expected_close"), ("won", "closed_on")):
            statement = _FORECAST_PG.format(table=table, status=status, day=day)
            raw.execute(statement, (WORKSPACE, start, end)).fetchall()

    ours_times = repeat(forecast_ours, at_least=3, at_most=20, budget=size.budget)
    theirs_times = repeat(forecast_theirs, at_least=3, at_most=20, budget=size.budget / 3)
    rows.append(Row(labels[0], median(ours_times), median(theirs_times), targets[0]))
    raw.close()
    app.repository.close()

    opened = _postgres_app("history", count)
    assert opened is not None
    app, raw, schema = opened
    names = {"o": f'"{schema}".opportunities', "e": f'"{schema}".events'}

    def analytics_ours() -> None:
        app.analytics("standard")

    def analytics_theirs() -> None:
        raw.execute(_CLOSED_PG.format(**names), (WORKSPACE,)).fetchall()
        raw.execute(_PATHS_PG.format(**names), (WORKSPACE, WORKSPACE)).fetchall()

    ours_times = repeat(analytics_ours, at_least=1, at_most=5, budget=size.budget)
    theirs_times = repeat(analytics_theirs, at_least=1, at_most=5, budget=size.budget / 3)
    rows.append(Row(labels[1], median(ours_times), median(theirs_times), targets[1]))
    raw.close()
    app.repository.close()

    opened = _postgres_app("history", deals)
    assert opened is not None
    app, raw, _ = opened
    raw.close()
    moment = NOW + HISTORY_SPAN / 2
    ours_times = repeat(
        lambda: app.pipeline("standard", as_of=moment), at_least=1, at_most=5, budget=size.budget
    )
    theirs_times = repeat(
        lambda: app.pipeline("standard"), at_least=3, at_most=20, budget=size.budget / 3
    )
    rows.append(Row(labels[2], median(ours_times), median(theirs_times), targets[2]))
    app.repository.close()
    return rows


#: The cases, by the name ``--only`` takes, in the order they run.
CASES: dict[str, Case] = {
    "change_stage": change_stage,
    "commit_sqlite": commit_sqlite,
    "stored_memory": stored_memory,
    "stored_sqlite": stored_sqlite,
    "stored_postgres": stored_postgres,
    "create_opportunities": create_opportunities,
    "load_sqlite": load_sqlite,
    "search_sqlite": search_sqlite,
    "pipeline_sqlite": pipeline_sqlite,
    "pipeline_postgres": pipeline_postgres,
    "pipeline_memory": pipeline_memory,
    "forecast_sqlite": forecast_sqlite,
    "analytics_sqlite": analytics_sqlite,
    "pipeline_as_of_sqlite": pipeline_as_of_sqlite,
    "reports_postgres": reports_postgres,
    "import": import_time,
    "memory": memory_per_opportunity,
}
