"""Shared fixtures for the bot-runtime tests (CPython 3.10 environment).

Imports of bot code happen inside the fixtures: the API suites run in the other runtime,
where spaCy and Rasa are not installed, and collect this file too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def built_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real knowledge base, built once into a temporary folder."""
    from bot import paths
    from bot.kb.build import build

    out = tmp_path_factory.mktemp("build")
    build(paths.knowledge_dir(), paths.clinic_file(), paths.rules_dir(), out)
    return out


@pytest.fixture(scope="session")
def runtime(built_dir: Path) -> Any:
    from bot import paths
    from bot.kb.runtime import load_runtime

    return load_runtime(built_dir, paths.clinic_file())


@pytest.fixture(scope="session")
def domain() -> dict:
    from bot import paths

    return paths.load_domain()
