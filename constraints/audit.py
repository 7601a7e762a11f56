"""`make audit`: pip-audit over what each runtime has installed, reviewed advisories aside.

    python constraints/audit.py bot=build/audit/bot.txt api=build/audit/api.txt [PIP-AUDIT OPTIONS]

Each ENV=FILE is a `pip freeze --all --exclude-editable` of that environment. pip-audit runs
once per environment with --strict (a package the advisory service cannot answer for fails
the audit instead of being skipped in silence) and ignores only the advisories that
constraints/advisories.yml lists as not-reachable for that environment and for the version
installed now: a new advisory, or a reviewed one on a changed version, fails. A package the
review says is removed fails when it is installed. Options after the files go to pip-audit
(for example --vulnerability-service osv). Runs in .venv-tools (pip-audit and PyYAML).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ADVISORIES = HERE / "advisories.yml"


def normalize(name: str) -> str:
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or constraints file, by normalized name."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name.split("[", 1)[0])] = version.strip()
    return pins


def load_advisories(path: Path = ADVISORIES) -> list[dict]:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["advisories"]


def ignored_ids(advisories: list[dict], env: str, installed: dict[str, str]) -> list[str]:
    """Ids (with aliases) of the advisories reviewed as not reachable at the installed version."""
    ids: list[str] = []
    for entry in advisories:
        if (entry["env"] == env and entry["status"] == "not-reachable"
                and installed.get(normalize(entry["package"])) == str(entry["version"])):
            ids += [entry["id"], *entry.get("aliases", [])]
    return sorted(set(ids))


def removed_but_installed(advisories: list[dict], env: str, installed: dict[str, str]) -> list[str]:
    return sorted({entry["package"] for entry in advisories if entry["env"] == env
                   and entry["status"] == "removed" and normalize(entry["package"]) in installed})


def pip_audit_command(freeze: str, ignore: list[str], extra: list[str]) -> list[str]:
    """--strict: a package the service cannot answer for fails instead of passing unaudited."""
    return [sys.executable, "-m", "pip_audit", "--strict", "--no-deps", "--disable-pip",
            "--progress-spinner", "off", "--desc", "off", "-r", freeze,
            *[f"--ignore-vuln={i}" for i in ignore], *extra]


def main(argv: list[str]) -> int:
    envs = [arg for arg in argv if "=" in arg and not arg.startswith("-")]
    extra = [arg for arg in argv if arg not in envs]
    if not envs:
        print(__doc__, file=sys.stderr)
        return 2
    advisories = load_advisories()
    failed = []
    for spec in envs:
        env, freeze = spec.split("=", 1)
        installed = read_pins(Path(freeze))
        ignore = ignored_ids(advisories, env, installed)
        reviewed = sum(1 for e in advisories if e["env"] == env and e["status"] == "not-reachable"
                       and installed.get(normalize(e["package"])) == str(e["version"]))
        print(f"== {env}: {len(installed)} packages; {reviewed} advisories reviewed as not "
              f"reachable are ignored ({ADVISORIES.name})", flush=True)
        stray = removed_but_installed(advisories, env, installed)
        if stray:
            print(f"{env}: installed although {ADVISORIES.name} says removed: {', '.join(stray)}")
            failed.append(env)
        if subprocess.run(pip_audit_command(freeze, ignore, extra)).returncode != 0:
            failed.append(env)
    if failed:
        print(f"make audit: FAILED for {', '.join(dict.fromkeys(failed))}. A finding: review it in "
              f"constraints/{ADVISORIES.name} (upgrade, uninstall, or show it cannot be reached). "
              "'Dependency not found on PyPI' or a connection error: the advisory service did not "
              "answer, so nothing was audited (make audit AUDIT_ARGS='--vulnerability-service osv').")
        return 1
    print("make audit: no advisory outside the review")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
