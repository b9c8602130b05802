"""Intuit: endpoint policy, error classification, response parsing and the one HTTP client.

Imports only the standard library, its own modules, `doctor.values` and `doctor.redaction`;
httpx is imported by the client alone, and lazily.
"""
