"""What the running bot processes load (bot.process_tuning, for memory): the action server
carries no TensorFlow or JAX, Rasa no JAX; both still answer (the rest of the suite)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_internal_services import _stack_processes


def _mapped_files(pid: int) -> set[str]:
    """Paths of the shared libraries mapped into the process."""
    paths = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and ".so" in fields[5]:
            paths.add(fields[5])
    return paths


def _process(stack: dict[str, str], marker: bytes) -> int:
    found = [pid for pid, cmdline in _stack_processes(stack).items() if marker in cmdline]
    assert len(found) == 1, f"{marker!r}: {found}"
    return found[0]


def test_the_action_server_loads_no_tensorflow_or_jax(stack: dict[str, str]) -> None:
    mapped = _mapped_files(_process(stack, b"bot.action_server"))
    assert any("/numpy/" in p for p in mapped) and any("/spacy/" in p for p in mapped)
    assert not [p for p in mapped if "/tensorflow/" in p or "/jaxlib/" in p]


def test_rasa_loads_no_jax(stack: dict[str, str]) -> None:
    mapped = _mapped_files(_process(stack, b"bot.rasa_server"))
    assert any("/tensorflow/" in p for p in mapped)  # Rasa's own, needed
    assert not [p for p in mapped if "/jaxlib/" in p]
