"""Healthy when every address nginx's config listens on (`listen` in `nginx -T`) is held
by nginx and answers a request made on the host with a status below `max_status`.

Whatever the layout (sites-enabled, conf.d, one big nginx.conf) and whatever the ports,
this is "the sites this host serves answer": a request goes to each listen address's
default server (127.0.0.1 or [::1] for a wildcard), over https without certificate checks
where the listen says `ssl`. A config nginx -T cannot read, or no curl on the host, is
"could not tell": `nginx_config` judges the config itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from opsfix.plugin import Check, CheckResult, Params
from opsfix.shell import cmd
from opsfix.transport.base import CommandResult

from .port_listening import _parse

# One awk reads `nginx -T` as nginx parses it (statements end at `;`, `{` or `}`; comments
# dropped) and prints each distinct "listen <address> [ssl]" of a server block (but those
# written inside a stream or mail block: they speak no HTTP; nginx -T prints each included
# file on its own, so a server's enclosing block is known only within one file), then
# "index <names...>" of every index directive, then each "root <path>" of a server (or the
# http block: a location's root is an asset folder). The shell asks each listen once,
# "opsfix-listen <listen> <port> <status>" (000: no answer), and looks in each root for
# one of the index names, "opsfix-root <ok|empty|missing> <root>". Processes: nginx, awk,
# and one curl per listen.
_SCRIPT = r"""bin=$1 timeout=$2
command -v curl >/dev/null 2>&1 || { echo 'no curl on the host' >&2; exit 127; }
conf=$("$bin" -T 2>/dev/null) || { echo 'nginx -T fails: the config cannot be read' >&2; exit 3; }
printf '%s\n' "$conf" | awk '
  function once(line) { if (!(line in seen) && n++ < 50) { seen[line] = 1; print line } }
  { sub(/#.*/, ""); buf = buf " " $0
    while (match(buf, /[{};]/)) {
      k = split(substr(buf, 1, RSTART - 1), w, " "); c = substr(buf, RSTART, 1)
      buf = substr(buf, RSTART + 1)
      if (c == "{") { block[++d] = w[1]; continue }
      if (c == "}") { d--; continue }
      if (w[1] == "listen" && block[d] == "server" && block[d - 1] !~ /^(stream|mail)$/) {
        s = ""; for (i = 3; i <= k; i++) if (w[i] == "ssl") s = " ssl"
        once("listen " w[2] s)
      } else if (w[1] == "root" && (block[d] == "server" || block[d] == "http")) {
        gsub(/["\047]/, "", w[2]); if (w[2] !~ /\$/ && !(w[2] in root) && r++ < 20) root[w[2]] = 1
      } else if (w[1] == "index") {
        for (i = 2; i <= k; i++) if (w[i] !~ /[$\/]/) names = names " " w[i]
      }
    }
  }
  END { print "index" names; for (x in root) print "root " x }' |
while read -r kind a b; do
  case $kind in
  index) names="$a $b" ;;
  root) r="$a${b:+ $b}" s=missing
    for i in $names index.html; do
      if [ -s "$r/$i" ]; then s=ok; break; elif [ -f "$r/$i" ]; then s=empty; fi
    done
    echo "opsfix-root $s $r" ;;
  listen) l=$a
    case $l in unix:*) continue ;; *:*) port=${l##*:} addr=${l%:*} ;; *) port=$l addr= ;; esac
    case $port in '' | *[!0-9]*) addr=$l port=80 ;; esac
    case $addr in
    '' | '*' | 0.0.0.0) host=127.0.0.1 ;; '[::]') host='[::1]' ;; *) host=$addr ;;
    esac
    scheme=http; [ -z "$b" ] || scheme=https
    code=$(curl -q -sS -k -g --noproxy '*' -m "$timeout" -o /dev/null -w '%{http_code}' \
      "$scheme://$host:$port/" 2>/dev/null)
    [ $? -ne 52 ] || code=444  # closed with no answer (`return 444`): nginx serves there
    echo "opsfix-listen $l $port ${code:-000}" ;;
  esac
done"""


class NginxSitesParams(Params):
    binary: str = Field("nginx", description="the nginx command on the host")
    max_status: int = Field(500, ge=100, le=600, description="an answer at or above fails")
    timeout: float = Field(5.0, gt=0, le=60, description="seconds per request")


class NginxSites(Check[NginxSitesParams]):
    Params = NginxSitesParams

    def commands(self) -> list[str]:
        p = self.params
        script = cmd("sh", "-c", _SCRIPT, "nginx-sites", p.binary, f"{p.timeout:g}")
        return [script, cmd("ss", "-ltnpH")]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        asked, ss = results
        if not asked.ok:
            why = (asked.stderr.strip().splitlines() or [f"exit {asked.exit_status}"])[-1]
            return CheckResult.error(f"cannot tell which sites nginx serves: {why[:200]}")
        lines = asked.stdout.splitlines()
        answers = [x.split()[1:4] for x in lines if x.startswith("opsfix-listen ")]
        answers = [a for a in answers if len(a) == 3 and a[1].isdigit()]
        roots = sorted(x.split(" ", 2)[1:] for x in lines if x.startswith("opsfix-root "))
        if not answers:
            return CheckResult.failed("nginx's config listens nowhere")
        held = _nginx_ports(ss) if ss.ok else None
        limit = self.params.max_status
        faults = [f for f in (_fault(a, int(p), c, held, limit) for a, p, c in answers) if f]
        faults += [f"{root}: index {state}" for state, root in roots if state != "ok"]
        listens = sorted({listen for listen, _, _ in answers})
        facts = {"listens": listens[:20], "roots": sorted(root for _, root in roots)[:20]}
        if faults:
            return CheckResult.failed("; ".join(faults[:5]), faults=faults[:20], **facts)
        return CheckResult.passed(f"{', '.join(listens[:8])} answer(s)", **facts)


def _nginx_ports(ss: CommandResult) -> set[int] | None:
    """Ports an nginx process listens on; None when ss shows no owners (not root)."""
    listeners = [x for x in map(_parse, ss.stdout.splitlines()) if x]
    if not any(x.owners for x in listeners):
        return None
    return {x.port for x in listeners if any(name == "nginx" for name, _ in x.owners)}


def _fault(listen: str, port: int, code: str, held: set[int] | None, limit: int) -> str:
    if held is not None and port not in held:
        return f"{listen}: port {port} is not held by nginx"
    if not code.isdigit() or code == "000":
        return f"{listen}: no answer"
    if int(code) >= limit:
        return f"{listen}: answered {code}"
    return ""
