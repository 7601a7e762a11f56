"""The contract between the two runtimes: what the bot (Rasa 3.6 and its action server, on
CPython 3.10) and the API (FastAPI, CPython 3.11+) agree on. Both import it; it imports
nothing beyond Python's standard library, so either side can run all of it.

* ``levels``: red-flag levels and their one severity order.
* ``safety``: the red-flag and refusal rules with their lexicons (the bot runs them in its
  NLU; the API runs them itself when the bot cannot answer).
* ``payloads``: every block the bot puts in a message's ``custom``, validated on both sides.
* ``callback``: the rules a callback request's fields follow.
* ``commands``: the syntax of the trusted commands (the opening command, button payloads).
* ``urgent``: the urgent reply for a red-flag level, from the domain's texts and the clinic.
* ``logs``: the JSON log line all three processes write, and the request id they pass on.
"""
