"""Subcommands of the opsfix CLI: one module each, registering its own parser."""
