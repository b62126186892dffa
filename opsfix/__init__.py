"""opsfix: find what is broken on a fleet of Linux hosts and repair it safely, with proof."""

__version__ = "0.1.0"
