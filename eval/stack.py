"""The API an evaluation talks to: a running one (``--url``) or a private stack."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext


def api_stack(url: str | None, test_key_env: str = "MESO_TEST_KEY") -> AbstractContextManager[dict[str, str]]:
    """The environment of the API to evaluate: ``MESO_API_URL`` (and ``MESO_TEST_KEY`` when
    known). Without ``url`` a private stack starts, rate limits off, with its own test key."""
    if url:
        return nullcontext({"MESO_API_URL": url, "MESO_TEST_KEY": os.environ.get(test_key_env, "")})
    from ops.stack import private_stack

    print("Starting a private stack for the evaluation…", flush=True)
    return private_stack(MESO_RATE_LIMIT_CONVERSATIONS_PER_MINUTE="0", MESO_RATE_LIMIT_MESSAGES_PER_MINUTE="0")
