"""The built-in transports, one module each, each declaring `TRANSPORT` (a Transport).

opsfix.transport.registry finds them here; a module whose name starts with `_` is a
helper, not a transport. Installed packages add theirs through the entry point group
`opsfix.transports` (docs/plugins.md, "A transport").
"""
