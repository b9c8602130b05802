"""Claude Desktop as the connector meets it: where its config lives, reading and judging it,
writing the connector's entry back, and whether Desktop is running.

Imports only the standard library, its own modules, `doctor.values`, `doctor.redaction` and
`doctor.store` (for the atomic replace and timestamps).
"""
