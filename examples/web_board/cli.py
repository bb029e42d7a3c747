"""The board's command line: ``python examples/web_board [--db FILE] [--port P]``.

Without ``--db`` the pipeline lives in memory and is gone when the server stops; with
it, in that SQLite file (created if needed). Either way, a store holding no
opportunity is first filled with the demo pipeline (``--no-demo`` leaves it empty).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from salesflow import SalesFlow
from salesflow.sqlite import SQLiteRepository
from web_board.demo import seed_demo
from web_board.server import create_app


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python examples/web_board", description="Serve salesflow's web board."
    )
    parser.add_argument(
        "--db", metavar="FILE", help="keep the pipeline in this SQLite file (default: in memory)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--process",
        help="the process the board opens on (default: the demo's, else 'standard')",
    )
    parser.add_argument(
        "--no-demo", action="store_true", help="do not seed an empty store with the demo"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    options = parse(argv)
    flow = SalesFlow(SQLiteRepository(options.db)) if options.db else SalesFlow()
    if not options.no_demo:
        seed_demo(flow)
    process = options.process
    if process is None:
        defined = {p.key for p in flow.processes()}
        process = "services" if "services" in defined else "standard"
    uvicorn.run(create_app(flow, process=process), host=options.host, port=options.port)
