"""``rasa run`` with its token from the environment, never on the command line.

Rasa reads ``--auth-token`` from its command line only, and a process's arguments are
visible to every user (``ps``, ``/proc/<pid>/cmdline``). ``python -m bot.rasa_server
--model ... --port ...`` (what ``ops/services.py`` starts) takes every other ``rasa run``
option, reads the token from ``MESO_RASA_TOKEN`` and runs Rasa's own ``rasa run`` in this
process with the token put straight into its parsed arguments: it never reaches ``sys.argv``.
A token (or a JWT secret) given as an argument is refused. The meso channel
(``bot/channels/meso.py``) checks the same token from the same variable.

It also applies ``bot.process_tuning`` for this process: JAX is never loaded, the action
server's replies are checked with a schema validator built once, stored events find their
classes without a walk over every event class, the rule policy stops walking back once
no rule is left to compare and sees only the states its rules can reach, and the actions
that read only recent events are sent only those; once the model is loaded, the objects
alive then are kept out of the garbage collector's full walks; and a thread waiting for the
interpreter (the parse thread) gets it after 0.5 ms instead of 5. And it lets the action
endpoint list several action servers (``bot.action_servers``), and logs in the format every
process shares, each call to the action server carrying its turn's request id (``bot.logs``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

TOKEN_ENV = "MESO_RASA_TOKEN"
SECRET_OPTIONS = ("--auth-token", "--jwt-secret", "--jwt-private-key", "--ssl-password")
"""Options whose value is a secret: not accepted here (they would show in ``ps``)."""


def secret_arguments(argv: List[str]) -> List[str]:
    """The options of ``argv`` that carry a secret (empty when none does)."""
    return [arg.split("=", 1)[0] for arg in argv
            if any(arg == opt or arg.startswith(opt + "=") for opt in SECRET_OPTIONS)]


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    refused = secret_arguments(argv)
    if refused:
        print(f"error: {', '.join(refused)} on the command line is visible to every user; "
              f"set {TOKEN_ENV} instead", file=sys.stderr)
        return 2
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"error: set {TOKEN_ENV} (the token of Rasa's HTTP API)", file=sys.stderr)
        return 2
    from contract.logs import format_refused

    refused = format_refused()
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2

    from bot.logs import configure as configure_logs

    configure_logs("rasa")  # Rasa's imports warn; again once Rasa has set up its own logging
    from bot.process_tuning import (
        RASA_UNUSED, cache_action_result_check, cache_event_types, copy_trackers_by_state,
        freeze_after_agent_load, incremental_applied_events, narrow_rule_matching, prompt_gil_handoff,
        recent_action_history, skip_unused_frameworks, tail_rule_states,
    )

    skip_unused_frameworks(RASA_UNUSED)
    import rasa.__main__
    import rasa.cli.run

    from bot.action_servers import several_action_servers
    from bot.logs import send_request_ids

    several_action_servers()
    send_request_ids()
    cache_action_result_check()
    cache_event_types()
    narrow_rule_matching()
    tail_rule_states()
    recent_action_history()
    incremental_applied_events()
    copy_trackers_by_state()
    freeze_after_agent_load()
    prompt_gil_handoff()

    rasa_run = rasa.cli.run.run

    def run_with_token(args: argparse.Namespace) -> None:
        args.auth_token = token
        # After Rasa's own logging set-up (its command line read), before anything is served.
        configure_logs("rasa", args.loglevel)
        rasa_run(args)

    # `rasa run`'s parser takes its default func from this module attribute when it is built.
    rasa.cli.run.run = run_with_token
    sys.argv = ["rasa", "run", *argv]
    rasa.__main__.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
