"""Claude Desktop as the connector meets it: `paths` (where its files live on each OS and which
program a command names), `config` (reading and judging its config), `update` (writing the
connector's entry back, with backups) and `processes` (is Desktop running, and since when).

Imports only the standard library, its own modules, `doctor.values`, `doctor.redaction` and
`doctor.store` (for the atomic replace and timestamps).
"""
