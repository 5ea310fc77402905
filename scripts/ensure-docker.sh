#!/usr/bin/env bash
# Makes sure a Docker Engine answers on this machine: installs Debian's
# docker.io when none is installed, and starts dockerd itself when no init
# system manages it (build containers and CI sandboxes have none).
set -euo pipefail

say() { printf 'ensure-docker: %s\n' "$*" >&2; }
log=/var/log/agentops-dockerd.log

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  say "no Docker Engine found: installing Debian's docker.io (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
fi

if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
  say "started docker.service with systemd"
else
  say "no init system manages Docker here: starting dockerd in the background (log: $log)"
  nohup setsid dockerd >"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    say "Docker Engine $(docker version --format '{{.Server.Version}}') is ready"
    exit 0
  fi
  sleep 1
done
say "Docker Engine did not answer within 60 s; see $log"
exit 1
