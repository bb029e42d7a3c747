"""The in-memory repository keeps the repository contract."""

from __future__ import annotations

from salesflow import InMemoryRepository
from salesflow.ports import Repository
from salesflow.testing import RepositoryContract


class TestInMemoryRepository(RepositoryContract):
    def make_repository(self, workspace: str) -> Repository:
        return InMemoryRepository(workspace=workspace)
