"""Record the canned outputs under data/: each check's real commands, run by the local dash
against a throwaway nginx on 127.0.0.1:18080 under /tmp/opsfix-capture (needs root and
nginx; stops its nginx and helper server on exit).

    cd tests/unit/checks && ../../../.venv/bin/python capture.py

Each data/<check>/<case>.json holds the params used and one result per command.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from throwaway import Nginx, answers, run_local, running, tools_dir, wait_until, write_tree

from opsfix.checks import file_present, http, nginx_config, port_listening, service_running
from opsfix.plugin import Check

BASE = Path("/tmp/opsfix-capture")
PORT, FOREIGN_PORT, CLOSED_PORT = 18080, 18081, 18089
DATA = Path(__file__).parent / "data"
TOOLS = BASE / "tools"


def save(module: Any, case: str, params: dict[str, Any], **how: Any) -> None:
    check: Check[Any] = _check(module, params)
    results = run_local(check.commands(), **how)
    record = {"params": params, "run": how or "root", "results": [r.__dict__ for r in results]}
    path = DATA / check.name / f"{case}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1, ensure_ascii=False).replace(f"{DATA}/", "")
    path.write_text(text + "\n")  # paths under data/ are kept relative to it
    print(f"{path.relative_to(DATA)}: {check.evaluate(results).summary}")


def _check(module: Any, params: dict[str, Any]) -> Check[Any]:
    cls = next(
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, Check) and v.__module__ == module.__name__
    )
    return cls(cls.Params.model_validate(params))


def broken(site: Nginx, case: str, change: Callable[[Path], object]) -> None:
    """Capture nginx_config with one change made to the tree, then put the tree back."""
    write_tree(site.base, site.port, ipv6=True)
    change(site.base / "nginx")
    save(nginx_config, case, {"config": str(site.conf)})
    write_tree(site.base, site.port, ipv6=True)


def nginx_config_cases(site: Nginx) -> None:
    conf = {"config": str(site.conf)}
    save(nginx_config, "ok", conf)
    duplicate = "server {\n\tlisten 127.0.0.1:18080;\n\tserver_name shop;\n}\n"
    broken(site, "ok_with_warning", lambda n: (n / "conf.d/a.conf").write_text(duplicate * 2))
    site_file = "sites-available/default"
    broken(site, "syntax_error", lambda n: _edit(n / site_file, "index.html;", "index.html"))
    broken(site, "unknown_directive", lambda n: (n / "conf.d/app.conf").write_text("gzipp on;\n"))
    include = f"include {site.base}/nginx/snippets/missing.conf;\n"
    broken(site, "broken_include", lambda n: (n / "conf.d/app.conf").write_text(include))
    shop = "sites-available/shop"
    broken(site, "dangling_symlink", lambda n: (n / "sites-enabled/shop").symlink_to(n / shop))
    save(nginx_config, "missing_config", {"config": str(site.base / "nope.conf")})
    save(nginx_config, "not_root", conf, as_user="nobody")
    save(nginx_config, "no_binary", {"binary": "/usr/local/sbin/no-nginx", **conf})


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def service_running_cases(site: Nginx) -> None:
    pid_file = str(site.pid_file)
    save(service_running, "pid_file_live", {"service": "nginx", "pid_file": pid_file})
    save(service_running, "pid_file_missing", {"service": "nginx", "pid_file": pid_file + ".gone"})
    stale = site.base / "run/stale.pid"
    stale.write_text("999999\n")
    save(service_running, "pid_file_stale", {"service": "nginx", "pid_file": str(stale)})
    zombie = subprocess.Popen(["sleep", "0"])  # exits at once; not reaped until wait()
    wait_until(lambda: Path(f"/proc/{zombie.pid}/status").read_text().count("State:\tZ") == 1)
    stale.write_text(f"{zombie.pid}\n")
    save(service_running, "pid_file_zombie", {"service": "sleep", "pid_file": str(stale)})
    zombie.wait()
    save(service_running, "process_live", {"service": "nginx", "pid_file": ""})
    save(service_running, "process_absent", {"service": "opsfix-none", "pid_file": ""})
    no_pgrep = tools_dir(TOOLS, ["head"])
    save(service_running, "no_pgrep", {"service": "nginx", "pid_file": ""}, path=no_pgrep)


def port_listening_cases() -> None:
    save(port_listening, "root", {"port": PORT, "process": "nginx"})
    save(port_listening, "not_root", {"port": PORT, "process": "nginx"}, as_user="nobody")
    save(port_listening, "no_ss", {"port": PORT}, path=tools_dir(TOOLS, ["head"]))


def http_cases(site: Nginx) -> None:
    (site.www / "assets/big.bin").write_bytes(bytes(range(256)) * 400)
    url = site.url
    curl = {"path": tools_dir(TOOLS, [*_HTTP_TOOLS, "curl"])}
    wget = {"path": tools_dir(TOOLS, [*_HTTP_TOOLS, "wget"])}
    for client, how in (("curl", curl), ("wget", wget)):
        save(http, f"{client}_200", {"url": url, "contains": "Welcome"}, **how)
        save(http, f"{client}_404", {"url": url, "path": "/assets/missing.js"}, **how)
        save(http, f"{client}_refused", {"url": f"http://127.0.0.1:{CLOSED_PORT}/"}, **how)
        save(
            http,
            f"{client}_big_binary",
            {"url": url, "path": "/assets/big.bin", "max_body": 64},
            **how,
        )
        save(http, f"{client}_unresolvable", {"url": "http://no-such-host.invalid/"}, **how)
    save(http, "curl_deep_link", {"url": url, "path": "shop/cart", "regex": 'id="app"'}, **curl)
    save(http, "wget_deep_link", {"url": url, "path": "shop/cart", "regex": 'id="app"'}, **wget)
    save(http, "no_client", {"url": url}, path=tools_dir(TOOLS, _HTTP_TOOLS))


_HTTP_TOOLS = ["head", "timeout"]


def file_present_cases(site: Nginx) -> None:
    root = str(site.www)
    release = DATA / "file_present" / "release"  # kept: the manifest tests read it
    shutil.rmtree(release, ignore_errors=True)
    shutil.copytree(site.www, release)
    (release / "assets/app.js").write_text('console.log("shop v2");\n')
    files = ["index.html", "assets/app.js", "empty.txt", "favicon.ico"]
    save(file_present, "files", {"root": root, "files": files})
    save(file_present, "manifest", {"root": root, "manifest": str(release)})
    save(file_present, "root_missing", {"root": str(BASE / "no-www")})
    save(
        file_present,
        "no_sha256sum",
        {"root": root, "manifest": str(release)},
        path=tools_dir(TOOLS, ["stat"]),
    )
    (site.www / "index.html").chmod(0o600)
    save(file_present, "not_readable", {"root": root, "manifest": str(release)}, as_user="nobody")
    (site.www / "index.html").chmod(0o644)


def main() -> None:
    site = write_tree(BASE, PORT, ipv6=True)
    nginx_config_cases(site)
    with running(site):
        foreign = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(FOREIGN_PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: answers(FOREIGN_PORT))
            service_running_cases(site)
            port_listening_cases()
            file_present_cases(site)
            http_cases(site)
        finally:
            foreign.terminate()
            foreign.wait()
    shutil.rmtree(BASE)


if __name__ == "__main__":
    main()
