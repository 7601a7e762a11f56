"""Rasa's own commands work from the project root with no flags and no MESO_* settings.

`rasa data validate` must find domain.yml, config.yml and data/ by Rasa's defaults, the way a
tester types it after `source .venv-bot/bin/activate`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot import paths

ROOT = paths.REPO_ROOT
RASA = Path(sys.executable).parent / "rasa"


def test_bare_rasa_data_validate_uses_the_root_domain() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESO_") and k != "LOG_LEVEL"}
    env["RASA_TELEMETRY_ENABLED"] = "false"
    result = subprocess.run([str(RASA), "data", "validate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "does not exist" not in out, out[-3000:]  # Rasa's words when domain.yml is missing
    assert "Validating intents" in out, out[-3000:]
    # Every intent of the NLU data, and every action of the rules, is in the root domain.
    assert "not listed in" not in out, out[-3000:]


def test_the_root_domain_is_the_one_paths_load() -> None:
    domain = paths.load_domain()
    assert paths.domain_file() == ROOT / "domain.yml"
    assert {"greet", "red_flag_emergency", "start_checklist", "decision_help"} <= set(domain["intents"])
    assert {"checklist_form", "callback_form", "values_form", "readiness_form"} <= set(domain["forms"])
    assert not (ROOT / "domain").exists(), "one domain.yml at the root, not a domain/ folder"


def test_bare_rasa_test_finds_only_our_test_stories() -> None:
    """`rasa test` walks the whole root (its default is "."): only tests/stories/ may match.

    Rasa takes a file named test_*.yml with a line starting `stories:` or `rules:` for test
    stories; tests/safety/phrasings.yml, the conversation tests (`test_cases:`), the
    environments and node_modules must not.
    """
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.data import get_data_files

    found = [Path(f) for f in get_data_files([str(ROOT)], YAMLStoryReader.is_test_stories_file)]
    assert found, "no test stories found"
    assert [f for f in found if f.parent != ROOT / "tests" / "stories"] == []
