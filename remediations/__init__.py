"""Built-in remediations: one module per remediation, each naming itself from its file."""
