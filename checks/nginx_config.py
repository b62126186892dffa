"""Healthy when `nginx -t` says the configuration syntax is ok and the test is successful.

A failure names nginx's own message, the file and line it points at, the file it could not
open (a broken include, or a dangling symlink in sites-enabled), and every dangling
symlink under the configuration folder. A missing binary, or a test that could not run
(not root: nginx cannot open its pid file), is "could not tell", never a verdict.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

_LOG_LINE = re.compile(r"\[(?P<level>[a-z]+)\] (?:\d+#\d+: )?(?P<message>.*)")
_WHERE = re.compile(r" in (?P<file>\S.*):(?P<line>\d+)$")
_OPEN = re.compile(r'open\(\) "(?P<path>[^"]*)" failed \((?P<errno>\d+): ')
_EACCES = "13"


class NginxConfigParams(Params):
    binary: str = Field("nginx", description="nginx command or absolute path")
    config: str | None = Field(None, description="main config file (nginx -c); default: nginx's")


class NginxConfig(Check[NginxConfigParams]):
    @property
    def conf_dir(self) -> str:
        """Where dangling symlinks are looked for: the config's folder, else /etc/nginx."""
        config = self.params.config
        return (posixpath.dirname(config) or ".") if config else "/etc/nginx"

    def commands(self) -> list[str]:
        config = ("-c", self.params.config) if self.params.config else ()
        return [cmd(self.params.binary, "-t", *config), cmd("find", self.conf_dir, "-xtype", "l")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        test, links = results
        output = (test.stdout + test.stderr).strip()
        logged = [m for m in map(_LOG_LINE.search, output.splitlines()) if m]
        dangling = links.stdout.splitlines() if links.ok else []
        if test.exit_status in (126, 127):
            return CheckResult.error(f"cannot run {self.params.binary}", output=output[-500:])
        if test.ok and "syntax is ok" in output and "test is successful" in output:
            warnings = [m["message"] for m in logged if m["level"] == "warn"]
            return CheckResult.passed("nginx -t: configuration ok", **_some(warnings, dangling))
        problem = next((m for m in logged if m["level"] in ("emerg", "alert", "crit")), None)
        if test.exit_status != 1 or "test failed" not in output or problem is None:
            why = "nginx -t gave no verdict"
            return CheckResult.error(why, exit=test.exit_status, output=output[-500:])
        facts = _facts(problem["message"])
        if facts.pop("errno", None) == _EACCES:
            return CheckResult.error("nginx -t was denied access (run with become?)", **facts)
        return CheckResult.failed(f"nginx -t: {facts['message']}", **facts, **_some([], dangling))


def _facts(message: str) -> dict[str, str | int]:
    facts: dict[str, str | int] = {"message": message}
    where = _WHERE.search(message)
    if where:
        facts.update(message=message[: where.start()], file=where["file"], line=int(where["line"]))
    opened = _OPEN.search(message)
    if opened:
        facts.update(cannot_open=opened["path"], errno=opened["errno"])
    return facts


def _some(warnings: list[str], dangling: list[str]) -> dict[str, list[str]]:
    """Only the lists that have something in them, each kept short."""
    lists = {"warnings": warnings[:10], "dangling_symlinks": dangling[:20]}
    return {key: value for key, value in lists.items() if value}
