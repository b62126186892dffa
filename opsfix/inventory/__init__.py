"""opsfix."""
