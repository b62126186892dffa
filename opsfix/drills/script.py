"""The shell scripts that break, reset and inspect a practice host. Pure: text in, text out.

Everything a drill does is recorded on the host, under RECORD_DIR/<drill>/:

    record      drill=, seq= (ns since the epoch: resets go newest first), broken_at=,
                by= (who broke it), nginx= (running or stopped before the drill)
    saved       "d PATH" or "f PATH" for each saved path that existed, absent: PATH otherwise
    backup.tar  the saved paths, modes and owners kept (tar -p --numeric-owner)

The record is complete before the fault is injected, so a break cut short can still be
reset. A break whose fault does not show (`broken_when` is false afterwards) or whose
commands fail is undone at once. A reset restores the saved paths exactly (a folder is
emptied and refilled, never replaced: it may be a mount point), removes paths that did not
exist, runs the drill's `undo`, and brings nginx back to the state the record names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from opsfix.drills.catalog import DRILLS, Drill
from opsfix.shell import quote

RECORD_DIR = "/var/lib/opsfix/drills"
EXIT_ALREADY = 3  # this drill is already recorded on the host
EXIT_PRESENT = 4  # the host shows the fault already, or cannot be broken this way

PRELUDE = r"""set -u
D=RECORD_DIR
export WEB_ROOT
say() { printf '%s\n' "$*"; }
die() { printf '%s\n' "$1" >&2; exit "${2:-1}"; }
[ "$(id -u)" = 0 ] || die "drills need root: set ansible_become: true for this host"
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
unit_active() { has_systemd && systemctl is-active --quiet nginx; }
nginx_master() {
  p=$(head -n 1 /run/nginx.pid 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = nginx ] && echo "$p"
}
nginx_is_running() { unit_active || nginx_master >/dev/null; }
nginx_stop() {
  if unit_active; then systemctl stop nginx; return; fi
  nginx_master >/dev/null || return 0
  nginx -s quit
  n=0; while pgrep -x nginx >/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  ! pgrep -x nginx >/dev/null
}
nginx_start() { if has_systemd; then systemctl start nginx; else nginx; fi; }
nginx_settle() {  # $1: running or stopped, as before the drill
  if [ "$1" != running ]; then nginx_stop; return; fi
  if ! nginx_is_running; then nginx_start; return; fi
  master=$(nginx_master) || master=
  old=$( [ -n "$master" ] && pgrep -P "$master" -x nginx || true)
  if unit_active; then systemctl reload nginx; else nginx -s reload; fi
  n=0
  for w in $old; do
    while kill -0 "$w" 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
  done
}
restore() {  # $1: a drill's record folder
  if [ -f "$1/saved" ]; then
    while read -r kind path; do
      case $kind in
        absent:) rm -rf -- "$path" ;;
        d) if [ -d "$path" ] && [ ! -L "$path" ]; then find "$path" -mindepth 1 -delete
           else rm -rf -- "$path"; fi ;;
        *) rm -rf -- "$path" ;;
      esac
    done < "$1/saved"
  fi
  if [ -f "$1/backup.tar" ]; then tar -C / -xpf "$1/backup.tar" --numeric-owner; fi
}
""".replace("RECORD_DIR", RECORD_DIR)

_BREAK = r"""
name=@@NAME@@
DRILL_DIR=$D/$name
if [ -e "$DRILL_DIR/record" ]; then
  since=$(sed -n 's/^broken_at=//p' "$DRILL_DIR/record")
  die "$name is already broken here (since $since): reset it first" @@EXIT_ALREADY@@
fi
rm -rf "$DRILL_DIR"
if (set -eu; @@PROBE@@
) >/dev/null 2>&1; then
  die "this host already shows the fault ($name): repair or reset it first" @@EXIT_PRESENT@@
fi
state=stopped; if nginx_is_running; then state=running; fi
mkdir -p "$D"; chmod 0700 "$D"
tmp=$(mktemp -d "$D/.$name.XXXXXX")
: > "$tmp/saved"
for path in @@SAVES@@; do
  if [ -d "$path" ] && [ ! -L "$path" ]; then say "d $path"
  elif [ -e "$path" ] || [ -L "$path" ]; then say "f $path"
  else say "absent: $path"; fi >> "$tmp/saved"
done
grep -v '^absent: ' "$tmp/saved" | cut -d' ' -f2- | sed 's|^/||' > "$tmp/paths"
if [ -s "$tmp/paths" ]; then
  tar -C / -cpf "$tmp/backup.tar" --numeric-owner --verbatim-files-from -T "$tmp/paths" \
    || die "backup failed"
fi
{ say "drill=$name"; say "seq=$(date +%s%N)"; say "broken_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  say by=@@BY@@; say "nginx=$state"; } > "$tmp/record"
mv "$tmp" "$DRILL_DIR"
export DRILL_DIR
if (set -eu; @@BREAKS@@
) && (set -eu; @@PROBE@@
) >/dev/null 2>&1; then
  say "broken: $name"
  exit 0
fi
restore "$DRILL_DIR"
(set -eu; @@UNDO@@
) || true
nginx_settle "$state" || true
rm -rf "$DRILL_DIR"
die "the fault did not take on this host: nothing is left changed"
"""

_RESET_ONE = r"""
reset_one() {  # $1: a drill's record folder
  DRILL_DIR=$1; export DRILL_DIR
  name=$(sed -n 's/^drill=//p' "$1/record")
  restore "$1" || return 1
  case $name in
@@UNDOS@@
  esac
  nginx_settle "$(sed -n 's/^nginx=//p' "$1/record")" || return 1
  rm -rf "$1"
  say "reset: $name"
}
records() {  # $1: sort's order flags (-n oldest first, -rn newest first)
  for r in "$D"/*/record; do
    [ -f "$r" ] || continue
    printf '%s %s\n' "$(sed -n 's/^seq=//p' "$r")" "${r%/record}"
  done | sort "$1" | cut -d' ' -f2-
}
"""

_RESET = r"""
failed=0
for d in $(records -rn); do reset_one "$d" || { echo "could not reset $d" >&2; failed=1; }; done
rm -rf "$D"/.*.?????? 2>/dev/null || true
exit $failed
"""

_STATUS = r"""
for d in $(records -n); do
  name=$(sed -n 's/^drill=//p' "$d/record")
  case $name in
@@PROBES@@
    *) still=unknown ;;
  esac
  since=$(sed -n 's/^broken_at=//p' "$d/record") by=$(sed -n 's/^by=//p' "$d/record")
  say "drill=$name since=$since still=$still by=$by"
done
"""


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _head(web_root: str) -> str:
    return f"WEB_ROOT={quote(web_root)}\n{PRELUDE}"


def break_script(drill: Drill, *, web_root: str, by: str) -> str:
    """Record, back up, break, and prove the fault shows; undo everything if it does not."""
    saves = " ".join(quote(p.format(web_root=web_root)) for p in drill.saves)
    return _head(web_root) + _fill(
        _BREAK,
        NAME=quote(drill.name),
        EXIT_ALREADY=str(EXIT_ALREADY),
        EXIT_PRESENT=str(EXIT_PRESENT),
        SAVES=saves,
        BY=quote(by),
        PROBE=drill.broken_when,
        BREAKS=drill.breaks,
        UNDO=drill.undo or ":",
    )


def _fill(template: str, **values: str) -> str:
    """Replace each @@KEY@@ once, in one pass: text put in is never searched again."""
    return re.sub(r"@@([A-Z_]+)@@", lambda m: values[m[1]], template)


def _cases(drills: Iterable[Drill], body: str) -> str:
    lines = []
    for d in drills:
        lines.append(f"    {quote(d.name)})")
        lines.append(_indent(body.format(undo=d.undo or ":", probe=d.broken_when), 6))
        lines.append("      ;;")
    return "\n".join(lines)


def reset_script(*, web_root: str) -> str:
    """Undo every drill recorded on the host, newest first; exit 1 if one could not be."""
    undos = _cases(DRILLS, "(set -eu\n{undo}\n) || return 1")
    return _head(web_root) + _fill(_RESET_ONE, UNDOS=undos) + _RESET


def status_script(*, web_root: str) -> str:
    """One line per recorded drill: its name, when, whether the fault still shows, who."""
    probes = _cases(
        DRILLS, "if (set -eu\n{probe}\n) >/dev/null 2>&1; then still=yes; else still=no; fi"
    )
    return _head(web_root) + _fill(_RESET_ONE, UNDOS="") + _fill(_STATUS, PROBES=probes)
