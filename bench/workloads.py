"""recover-1 and verify: opsfix's own workloads around the nginx_recovery playbook.

Both run the real `playbooks/nginx_recovery.yml`. For the verify workload a copy without
its `verify:` list is written next to the run's scratch files, so that the difference
between the two is the testinfra suite and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from contenders import REPO

RECOVERY = REPO / "playbooks" / "nginx_recovery.yml"

# A syntax error in a new conf.d file: nginx -t fails, the running nginx keeps serving.
BREAK_CONFIG = "printf 'server {\\n\\tlisten 8081\\n}\\n' > /etc/nginx/conf.d/typo.conf"


def recovery_copies(folder: Path) -> tuple[Path, Path]:
    """nginx_recovery.yml with and without its verify suites, paths made absolute."""
    data = yaml.safe_load(RECOVERY.read_text())
    base = RECOVERY.parent
    if "release_dir" in data.get("vars", {}):
        data["vars"]["release_dir"] = str((base / data["vars"]["release_dir"]).resolve())
    data["verify"] = [str((base / v).resolve()) for v in data.get("verify", [])]
    folder.mkdir(parents=True, exist_ok=True)
    with_verify = folder / "recovery.yml"
    with_verify.write_text(yaml.safe_dump(data, sort_keys=False))
    data.pop("verify")
    without = folder / "recovery-noverify.yml"
    without.write_text(yaml.safe_dump(data, sort_keys=False))
    return with_verify, without
