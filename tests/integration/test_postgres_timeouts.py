"""A PostgreSQL repository never hangs: a silent server or network, a slow statement or
a pool with no free connection each becomes a ``StorageError`` within a bounded time."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from salesflow import ChangeSet
from salesflow.errors import StorageError, ValidationError
from salesflow.postgres import PostgresRepository
from salesflow.testing import make_opportunity

pytestmark = pytest.mark.postgres


class SilencingProxy:
    """A TCP proxy in front of the server that can fall silent: from then on it
    forwards nothing, in either direction, and answers no new connection -- while
    keeping every socket open, as a network that drops packets would look to the
    client."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.silent = threading.Event()
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.silent.is_set():
                continue  # accepted, never answered
            server = socket.create_connection(self._target)
            self._sockets.append(server)
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                if self.silent.is_set():
                    time.sleep(0.05)
                    continue
                for key, _ in selector.select(timeout=0.05):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    if self.silent.is_set():
                        break  # fell silent meanwhile: this data is lost
                    key.data.sendall(data)

    def close(self) -> None:
        self._stop.set()
        for open_socket in self._sockets:
            with contextlib.suppress(OSError):
                open_socket.close()


@pytest.fixture
def proxy(postgres_dsn: str) -> Iterator[SilencingProxy]:
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn)
    found = SilencingProxy(str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    yield found
    found.close()


def _through(proxy: SilencingProxy, dsn: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, host="127.0.0.1", port=str(proxy.port))


def test_a_network_falling_silent_mid_session_is_a_storage_error_in_bounded_time(
    proxy: SilencingProxy, postgres_dsn: str, postgres_schema: str
) -> None:
    repository = PostgresRepository(
        _through(proxy, postgres_dsn),
        schema=postgres_schema,
        workspace=f"w-{uuid.uuid4().hex}",
        operation_timeout=1.0,
        connect_timeout=2,
        pool_timeout=3.0,
    )
    try:
        repository.commit(ChangeSet(opportunities=(make_opportunity("o-1"),)))

        def silenced_mid_command() -> None:
            with repository.command("o-1"):
                proxy.silent.set()  # while a command block waits on the network
                repository.get_opportunity("o-1")

        def read() -> None:
            repository.get_opportunity("o-1")

        def write() -> None:
            repository.commit(ChangeSet(opportunities=(make_opportunity("o-2"),)))

        # First mid-command; then with every connection of the pool silent.
        for work in (silenced_mid_command, read, write):
            started = time.monotonic()
            with pytest.raises(StorageError):
                work()
            assert time.monotonic() - started < 15
    finally:
        repository.close()


def test_a_server_that_never_answers_the_connection_is_a_storage_error(
    proxy: SilencingProxy, postgres_dsn: str
) -> None:
    proxy.silent.set()
    started = time.monotonic()
    with pytest.raises(StorageError, match="connecting failed"):
        PostgresRepository(_through(proxy, postgres_dsn), connect_timeout=2)
    assert time.monotonic() - started < 15


def test_a_statement_running_past_the_statement_timeout_is_a_storage_error(
    postgres_dsn: str, postgres_schema: str
) -> None:
    repository = PostgresRepository(
        postgres_dsn, schema=postgres_schema, workspace="slow", statement_timeout=0.2
    )
    try:
        started = time.monotonic()
        with pytest.raises(StorageError, match="statement timeout"):
            repository._query("sleeping", "SELECT pg_sleep(5)")
        assert time.monotonic() - started < 4
        assert repository.get_opportunity("none") is None  # the repository carries on
    finally:
        repository.close()


def test_a_thread_waiting_for_a_connection_of_a_full_pool_gets_a_storage_error(
    postgres_dsn: str, postgres_schema: str
) -> None:
    repository = PostgresRepository(
        postgres_dsn, schema=postgres_schema, workspace="full", pool_size=1, pool_timeout=0.5
    )
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with repository.command("o-1"):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert inside.wait(10)
        with pytest.raises(StorageError, match="no working connection"):
            repository.get_opportunity("o-1")
    finally:
        release.set()
        holder.join(10)
        repository.close()


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("timeout", 0),
        ("statement_timeout", -1.0),
        ("network_timeout", float("nan")),
        ("operation_timeout", "10"),
        ("pool_size", 0),
        ("min_connections", 11),
        ("pool_timeout", True),
        ("connect_timeout", 2.5),
    ],
)
def test_bad_pool_and_timeout_settings_are_refused(
    postgres_dsn: str, argument: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=f"PostgresRepository.{argument}"):
        PostgresRepository(postgres_dsn, **{argument: value})  # type: ignore[arg-type]
