"""Private stacks for a run: one for the shipped clinic, one per clinic fixture.

Each is a whole stack (action server, Rasa, API) on spare ports (``ops.stack``), with its
own random test key so the runner learns what the assistant understood, and no rate
limits. A clinic fixture becomes the stack's clinic file; only the facts it names are set.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml

from bot.kb.loader import KnowledgeError, load_clinic
from convtest.runner import Target
from convtest.spec import FormatError, TestCase
from ops.services import Services
from ops.stack import private_services

DEFAULT = "shipped clinic"


def clinic_key(case: TestCase) -> str:
    """Cases with equal clinic facts share a stack, whatever their fixtures are called."""
    return DEFAULT if case.clinic is None else json.dumps(case.clinic, sort_keys=True)


def check_clinics(cases: list[TestCase], folder: Path) -> dict[str, Path]:
    """Write each distinct clinic fixture to ``folder`` and validate it with the bot's own
    loader; raise :class:`FormatError` naming the file and fixture of any invalid one."""
    files: dict[str, Path] = {}
    problems: list[str] = []
    for case in cases:
        key = clinic_key(case)
        if case.clinic is None or key in files:
            continue
        path = folder / f"clinic-{len(files) + 1}.yml"
        path.write_text(yaml.safe_dump(case.clinic, sort_keys=False), encoding="utf-8")
        try:
            load_clinic(path)
        except KnowledgeError as exc:
            problems.extend(f"{case.file}: fixture '{case.clinic_fixture}': "
                            f"{p.replace(str(path), 'clinic')}" for p in exc.problems)
            continue
        files[key] = path
    if problems:
        raise FormatError(problems)
    return files


@contextmanager
def private_targets(cases: list[TestCase]) -> Iterator[dict[str, Target]]:
    """Start the stacks ``cases`` need, concurrently; yield a Target per clinic key."""
    with tempfile.TemporaryDirectory(prefix="meso-convtest-") as tmp:
        clinics = check_clinics(cases, Path(tmp))
        names = {clinic_key(c): c.clinic_fixture for c in cases}
        keys = sorted({clinic_key(c) for c in cases}, key=lambda k: k != DEFAULT)
        plans: list[tuple[str, dict[str, str]]] = []
        for key in keys:
            overrides = {
                "MESO_TEST_KEY": secrets.token_urlsafe(24),
                "MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE": "0",
                "MESO_RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
            }
            if key in clinics:
                overrides["MESO_CLINIC_FILE"] = str(clinics[key])
            plans.append((key, overrides))
        with ExitStack() as exits:
            managers: list[AbstractContextManager[Services]] = [
                private_services(**overrides) for _, overrides in plans
            ]
            with ThreadPoolExecutor(max_workers=max(1, len(managers))) as pool:
                futures = [pool.submit(m.__enter__) for m in managers]
                started: list[Any] = []
                errors: list[BaseException] = []
                for manager, future in zip(managers, futures):
                    try:
                        started.append(future.result())
                        exits.push(manager.__exit__)
                    except BaseException as exc:  # noqa: BLE001 - reported after clean-up
                        errors.append(exc)
                if errors:
                    raise errors[0]
            targets: dict[str, Target] = {}
            for (key, overrides), services in zip(plans, started):
                fixture = names[key] if key != DEFAULT else None
                targets[key] = Target(
                    name=f"private stack ({'clinic fixture ' + str(fixture) if fixture else DEFAULT})",
                    url=services.env["MESO_API_URL"],
                    test_key=overrides["MESO_TEST_KEY"],
                    private=True,
                    clinic_fixture=fixture,
                )
            yield targets
