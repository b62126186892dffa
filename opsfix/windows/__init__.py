"""Maintenance windows and freezes: when disruptive steps may run, and schedules for them.

The engine asks `policy_for_host(...)` for each host's `Policy` and then
`policy.allows_disruption(now)`; `opsfix windows` and `opsfix schedule` show and
schedule the windows. See docs/windows.md.
"""

from opsfix.playbook.durations import format_duration, parse_duration
from opsfix.windows.model import (
    Freeze,
    Opening,
    Policy,
    Verdict,
    Window,
    WindowValueError,
    format_instant,
)
from opsfix.windows.parse import (
    FREEZES_VAR,
    WINDOWS_VAR,
    parse_policy,
    policy_for_host,
)

__all__ = [
    "FREEZES_VAR",
    "WINDOWS_VAR",
    "Freeze",
    "Opening",
    "Policy",
    "Verdict",
    "Window",
    "WindowValueError",
    "format_duration",
    "format_instant",
    "parse_duration",
    "parse_policy",
    "policy_for_host",
]
