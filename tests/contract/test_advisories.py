"""The dependency review (constraints/advisories.yml) against the pins of both runtimes.

No network: `make audit` asks the advisory service; these tests keep the review honest
between audits. Bumping a pin that a reviewed advisory names, without reviewing it again,
fails here; so does a package the review says is removed that is pinned again or no longer
uninstalled by the Makefile. Run in both environments.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "constraints"
REVIEW = yaml.safe_load((CONSTRAINTS / "advisories.yml").read_text(encoding="utf-8"))
ADVISORIES = REVIEW["advisories"]
ENVS = {"bot": "BOT_VENV", "api": "API_VENV"}
STATUSES = {"not-reachable", "removed", "fixed"}
ID = re.compile(r"^(PYSEC-\d{4}-\d+|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|CVE-\d{4}-\d{4,})$")
FIELDS = {"package", "env", "version", "affected", "fixed_in", "id", "aliases", "title",
          "status", "reason"}


def _load_audit():
    spec = importlib.util.spec_from_file_location("constraints_audit", CONSTRAINTS / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit = _load_audit()


def pins(env: str) -> dict[str, str]:
    return audit.read_pins(CONSTRAINTS / f"{env}.txt")


def uninstalled_by_makefile(env: str) -> set[str]:
    """Packages the Makefile's recipe for that environment uninstalls after installing."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split(f"$({ENVS[env]})/.installed:", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for line in recipe.splitlines():
        if "pip uninstall" in line and not line.lstrip().startswith("#"):
            words = line.split("pip uninstall", 1)[1].split()
            names |= {audit.normalize(w) for w in words if not w.startswith("-")}
    return names


def in_affected(version: str, entry: dict) -> bool:
    return any(SpecifierSet(spec).contains(Version(str(version)), prereleases=True)
               for spec in entry["affected"])


def label(entry: dict) -> str:
    return f"{entry['env']}/{entry['package']}/{entry['id']}"


def test_the_review_is_well_formed() -> None:
    assert ADVISORIES, "no advisory listed"
    seen = set()
    for entry in ADVISORIES:
        assert FIELDS <= set(entry) <= FIELDS | {"upgraded_to"}, label(entry)
        assert entry["env"] in ENVS, label(entry)
        assert entry["status"] in STATUSES, label(entry)
        assert ID.match(entry["id"]), label(entry)
        assert all(ID.match(alias) for alias in entry["aliases"]), label(entry)
        assert entry["affected"] and all(SpecifierSet(s) for s in entry["affected"]), label(entry)
        assert all(Version(str(v)) for v in entry["fixed_in"]), label(entry)
        assert entry["title"].strip(), label(entry)
        assert len(entry["reason"].split()) >= 6, f"{label(entry)}: say why, with the evidence"
        assert f"{entry['env']}/{entry['package']}" in REVIEW["packages"], label(entry)
        key = (entry["env"], audit.normalize(entry["package"]), entry["id"])
        assert key not in seen, f"{label(entry)} listed twice"
        seen.add(key)
    for name, package in REVIEW["packages"].items():
        assert package["held_by"].strip() and package["use"].strip(), name


@pytest.mark.parametrize("entry", ADVISORIES, ids=label)
def test_each_reviewed_version_is_one_the_advisory_affects(entry: dict) -> None:
    assert in_affected(entry["version"], entry), (
        f"{label(entry)}: {entry['version']} is outside {entry['affected']}")


@pytest.mark.parametrize("entry", [e for e in ADVISORIES if e["status"] == "not-reachable"],
                         ids=label)
def test_a_not_reachable_advisory_names_the_version_pinned_now(entry: dict) -> None:
    pinned = pins(entry["env"]).get(audit.normalize(entry["package"]))
    assert pinned == str(entry["version"]), (
        f"{label(entry)} was reviewed for {entry['version']}, constraints/{entry['env']}.txt "
        f"pins {pinned}: review the advisory again for the new version "
        f"(constraints/advisories.yml) and run `make audit`")


def test_a_fixed_advisory_names_the_upgrade_pinned_now() -> None:
    for entry in (e for e in ADVISORIES if e["status"] == "fixed"):
        upgraded = str(entry["upgraded_to"])
        assert pins(entry["env"]).get(audit.normalize(entry["package"])) == upgraded, label(entry)
        assert not in_affected(upgraded, entry), f"{label(entry)}: {upgraded} is still affected"


@pytest.mark.parametrize("entry", [e for e in ADVISORIES if e["status"] == "removed"], ids=label)
def test_a_removed_package_is_unpinned_and_uninstalled_after_install(entry: dict) -> None:
    name = audit.normalize(entry["package"])
    assert name not in pins(entry["env"]), (
        f"{label(entry)}: the review says removed, but constraints/{entry['env']}.txt pins it")
    assert name in uninstalled_by_makefile(entry["env"]), (
        f"{label(entry)}: the review says removed, but the Makefile does not uninstall it")


def test_the_audit_ignores_only_reviewed_advisories_at_the_reviewed_version() -> None:
    installed = pins("bot")
    ignored = set(audit.ignored_ids(ADVISORIES, "bot", installed))
    reviewed = [e for e in ADVISORIES if e["env"] == "bot" and e["status"] == "not-reachable"]
    assert reviewed and all({e["id"], *e["aliases"]} <= ignored for e in reviewed)
    assert not ignored & {e["id"] for e in ADVISORIES
                          if e["env"] == "bot" and e["status"] != "not-reachable"}
    # A bumped aiohttp pin is audited afresh: none of its reviewed advisories is ignored.
    bumped = dict(installed, aiohttp="3.9.99")
    aiohttp_ids = {e["id"] for e in reviewed if e["package"] == "aiohttp"}
    assert aiohttp_ids and not aiohttp_ids & set(audit.ignored_ids(ADVISORIES, "bot", bumped))
    # A removed package found installed fails the audit.
    assert audit.removed_but_installed(ADVISORIES, "bot", installed) == []
    assert "dnspython" in audit.removed_but_installed(ADVISORIES, "bot",
                                                      dict(installed, dnspython="2.3.0"))


def test_the_audit_fails_when_the_service_cannot_answer_for_a_package() -> None:
    command = audit.pip_audit_command("frozen.txt", ["PYSEC-2024-110"], [])
    assert "--strict" in command and "--no-deps" in command
    assert "--ignore-vuln=PYSEC-2024-110" in command


def test_make_audit_stays_out_of_make_test_and_the_runtimes() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    test_prerequisites = re.search(r"^test:(.*)$", makefile, re.M).group(1).split()
    assert "audit" not in test_prerequisites
    assert "pip-audit" not in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert all(audit.normalize("pip-audit") not in pins(env) for env in ENVS)
    assert audit.read_pins(CONSTRAINTS / "tools.txt").get("pip-audit")
