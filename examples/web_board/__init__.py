"""A small web board over salesflow: the stage columns of a process with their
figures, cards with seed 000's activity boxes, drag and drop between columns (asking
before cancelling activities, as seed 003's dialog does), live figures from the change
feed and a forecast chart -- plain HTML, CSS and JavaScript served by Starlette.

Run it with ``python examples/web_board`` from the repository's root (see
docs/web-board.md); ``create_app(flow)`` gives the ASGI application over any
``SalesFlow``.
"""

from __future__ import annotations

from web_board.demo import SERVICES, seed_demo
from web_board.server import create_app

__all__ = ["SERVICES", "create_app", "seed_demo"]
