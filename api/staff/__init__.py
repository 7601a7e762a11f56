"""The staff console's logic: accounts, sessions, second factor, audit log, erasure.

The routes are in ``api.routes.staff`` (one module per area), the pages in
``api/templates/staff/``.
"""
