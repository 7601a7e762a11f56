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


def domain_dir() -> Path:
    """The Rasa domain, one file per concern (``rasa train --domain domain``)."""
    return REPO_ROOT / "domain"


def load_domain(directory: Path | None = None) -> dict:
    """Every file of the domain merged the way Rasa merges them: lists joined, maps united."""
    import yaml

    merged: dict = {}
    for path in sorted((directory or domain_dir()).glob("*.yml")):
        part = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for key, value in part.items():
            if isinstance(value, list):
                merged.setdefault(key, [])
                merged[key].extend(v for v in value if v not in merged[key])
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged
