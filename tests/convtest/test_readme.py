"""The tester's page shows a real test of the suite, so the example always runs and passes."""

from __future__ import annotations

import re

import yaml

from bot.paths import REPO_ROOT


def test_the_readme_example_is_the_first_test_of_cost_yml() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Write one"):]
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    suite = yaml.safe_load((REPO_ROOT / "tests/conversations/cost.yml").read_text(encoding="utf-8"))

    assert example["test_cases"] == suite["test_cases"][:1]
