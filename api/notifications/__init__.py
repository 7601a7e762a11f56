"""Telling staff at once that a conversation needs them.

* ``outbox``: what is written, in the same transaction as the turn that caused it: a red
  flag (the conversation's first, or a more severe level), a callback request; and, later, a
  reminder of a same-day-or-worse flag nobody has marked reviewed.
* ``channels``: how it is sent: email (SMTP) and/or a webhook (a team chat), a short notice
  with the kind, the level, the time and a link to the conversation in the staff console,
  never health or contact detail.
* ``dispatch``: the background task (in every API worker, each notice claimed by one) that
  sends what is due, retries with a growing wait, and writes what failed where the staff
  console shows it (``/staff/notifications``).

A red flag in a conversation without transcript consent is not stored (``api.crud``), so it
is not notified either: staff could open nothing of it. A callback request is its own
consent and is always notified.
"""
