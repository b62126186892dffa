"""opsfix: find what is broken on a fleet of Linux hosts and repair it safely, with proof."""

__version__ = "0.1.0"

from opsfix import _moved

_moved.install()  # plugins' old import paths (opsfix.state, opsfix.results...) keep working
