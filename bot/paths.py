"""Where the bot runtime finds its files.

Every path derives from this file's location or from an environment variable, never
from the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent


def knowledge_dir() -> Path:
    """The folder with topics.yml, sources.yml and entries/ (``MESO_KNOWLEDGE_DIR``)."""
    return Path(os.environ.get("MESO_KNOWLEDGE_DIR", REPO_ROOT / "knowledge"))


def clinic_file() -> Path:
    """The clinic's own facts (``MESO_CLINIC_FILE``)."""
    return Path(os.environ.get("MESO_CLINIC_FILE", REPO_ROOT / "clinic.yml"))


def build_dir() -> Path:
    """Where built artefacts go: the knowledge index and the spaCy pipeline (``MESO_BUILD_DIR``)."""
    return Path(os.environ.get("MESO_BUILD_DIR", REPO_ROOT / "build"))


def kb_file() -> Path:
    return build_dir() / "kb.json"


def spacy_dir() -> Path:
    return build_dir() / "spacy-pipeline"


def rules_dir() -> Path:
    return REPO_ROOT / "data" / "rules"


def domain_file() -> Path:
    """The Rasa domain: one file at the root, where Rasa's own commands look for it."""
    return REPO_ROOT / "domain.yml"


def load_domain(path: Path | None = None) -> dict:
    """The Rasa domain as a dict (``domain.yml`` unless ``path`` names another file)."""
    import yaml

    return yaml.safe_load((path or domain_file()).read_text(encoding="utf-8")) or {}
