"""Claude Desktop as the connector meets it: `paths` (where its files live on each OS and which
program a command names), `config` (reading and judging its config), `update` (writing the
connector's entry back, with backups), `processes` (is Desktop running, since when, how many
connector copies), `logs` (what Desktop's own logs say about the connector's last start) and
`extensions` (Desktop Extensions and the launch Desktop builds for them).

Imports only the standard library, psutil (lazily, in `processes`), its own modules,
`doctor.values`, `doctor.redaction` and `doctor.store` (for the atomic replace and timestamps).
"""
