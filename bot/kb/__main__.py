"""``python -m bot.kb validate|build``: check the knowledge files, or check and build them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot import paths
from bot.kb.build import build, validate
from bot.kb.loader import KnowledgeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.kb", description=__doc__)
    parser.add_argument("command", choices=["validate", "build"])
    parser.add_argument("--knowledge", type=Path, default=None, help="knowledge folder")
    parser.add_argument("--clinic", type=Path, default=None, help="clinic file")
    parser.add_argument("--rules", type=Path, default=None, help="folder of Rasa rules (which intents the knowledge base must answer)")
    parser.add_argument("--out", type=Path, default=None, help="build folder")
    args = parser.parse_args(argv)
    knowledge = args.knowledge or paths.knowledge_dir()
    clinic = args.clinic or paths.clinic_file()
    rules = args.rules or paths.rules_dir()
    try:
        if args.command == "validate":
            kb = validate(knowledge, clinic, rules)
        else:
            kb = build(knowledge, clinic, rules, args.out or paths.build_dir())
    except KnowledgeError as exc:
        print(f"knowledge base: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    verb = "valid" if args.command == "validate" else "built"
    print(f"knowledge base {verb}: {len(kb.entries)} entries, {len(kb.topics)} topics, {len(kb.sources)} sources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
