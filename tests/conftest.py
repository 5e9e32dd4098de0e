"""Shared fixtures for tests/ (integration/ has its own conftest)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The project's source checkout (where build.zig lives)."""
    return REPO_ROOT
