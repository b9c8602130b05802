"""The commands a person runs (`doctor`, `reauth-qb`, `refresh-qb`): click wiring and the flows
behind it. This package sits on top: nothing else in `doctor/` or `probes/` imports it.
"""
