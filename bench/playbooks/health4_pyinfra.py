"""health-4 for pyinfra: the same four read-only checks, one server.shell operation each."""

from pyinfra.operations import server

server.shell(name="nginx config is valid", commands=["nginx -t"])
server.shell(name="port 80 is listening", commands=["ss -ltnH 'sport = :80' | grep -q ."])
server.shell(name="disk usage of /var/log", commands=["df -P /var/log"])
server.shell(name="size of /var/log", commands=["du -sk /var/log"])
