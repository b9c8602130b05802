"""The connector's own state on disk: the home folder, `.env`, the lock and the token store.

Imports only the standard library, its own modules, `doctor.values`, `doctor.redaction` and the
Intuit client (the token store refreshes through it): no pluggy, no click, no doctor run, so the
connector can import it alone (tests/framework/test_layout.py keeps it so).
"""
