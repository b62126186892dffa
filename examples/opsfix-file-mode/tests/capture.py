"""Record the cases under tests/cases/ by running file_mode's real command here.

    python tests/capture.py

Each case is a file made for it under /tmp/opsfix-file-mode-capture; to capture from a
host instead, pass `shell=("ssh", "HOST")` to capture().
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from opsfix_file_mode.file_mode import FileMode

from opsfix.testing import capture

CASES = Path(__file__).parent / "cases" / "file_mode"
BASE = Path("/tmp/opsfix-file-mode-capture")


def main() -> None:
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir()
    for name, mode in (("private", 0o600), ("world_writable", 0o666)):
        (BASE / name).write_text("secret\n")
        os.chmod(BASE / name, mode)
        print(name, capture(FileMode, CASES / f"{name}.json", path=str(BASE / name), mode="0640"))
    print("missing", capture(FileMode, CASES / "missing.json", path=str(BASE / "gone")))
    os.symlink(BASE / "private", BASE / "link")
    print("link", capture(FileMode, CASES / "link.json", path=str(BASE / "link")))
    shutil.rmtree(BASE)


if __name__ == "__main__":
    main()
