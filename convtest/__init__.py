"""Conversation tests: conversations written in YAML (``tests/conversations/``), held through
the public chat API of a private stack or a running deployment, judged step by step.

``spec`` reads and checks the files, ``catalog`` knows the ids they may name, ``checks``
judges assertions, ``runner`` holds the conversations, ``stacks`` starts private stacks,
``report`` writes JUnit XML and HTML, ``draft`` turns real replies into draft tests. The
format is described in ``convtest/README.md``; run it with ``python -m convtest``.
"""
