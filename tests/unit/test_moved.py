"""Old module paths still import (plugins written before the package layout), as the very
same module objects, with a DeprecationWarning that names the new home."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import opsfix
from opsfix._moved import MOVED, SPLIT


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_is_the_new_module(old: str) -> None:
    new = importlib.import_module(MOVED[old])
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=MOVED[old]):
        assert importlib.import_module(old) is new


def test_a_plugin_importing_old_names_gets_the_same_classes() -> None:
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    from opsfix.state import GrowthSample\n"
        "except DeprecationWarning as w:\n    print(w)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "opsfix.state moved to opsfix.evidence.state" in done.stdout
    from opsfix.evidence.state import GrowthSample
    from opsfix.state import GrowthSample as Old  # type: ignore[import-not-found]

    assert Old is GrowthSample


def test_the_split_module_offers_each_name_from_its_home() -> None:
    from opsfix.inventory.host import Host
    from opsfix.secret import Secret
    from opsfix.transport.spec import ConnectionSpec

    sys.modules.pop("opsfix.hosts", None)
    with pytest.warns(DeprecationWarning):
        old = importlib.import_module("opsfix.hosts")
    assert (old.Host, old.ConnectionSpec, old.Secret) == (Host, ConnectionSpec, Secret)
    assert set(SPLIT["opsfix.hosts"]) == {
        "Host",
        "ConnectionSpec",
        "Secret",
        "DEFAULT_OUTPUT_LIMIT",
    }


def test_a_new_module_never_shadows_an_old_name() -> None:
    """An old name that exists again as a real module would never reach the alias."""
    top = Path(opsfix.__file__).parent.parent
    for old in [*MOVED, *SPLIT]:
        path = top / old.replace(".", "/")
        assert not path.with_suffix(".py").exists() and not path.is_dir(), old
