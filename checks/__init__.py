"""Built-in checks: one module per check, each naming itself from its file."""
