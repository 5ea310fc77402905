#!/usr/bin/env bash
# Builds the agent's base image (Debian 12 + python3 + python3-venv + the CA
# bundle) locally with debootstrap + `docker import`, and saves it as an image
# archive: what an air-gapped site ships to its hosts, and what the
# docker_agent role loads (docker_agent_base_image_archive) before it builds
# the agent with BASE_IMAGE set to it. No registry is involved.
#
# The tag is a hash of this recipe (and of the CA bundle), so an unchanged
# recipe is neither rebuilt nor saved again. Prints the archive path on stdout;
# progress goes to stderr.
#   AGENT_BASE_ARCHIVE   archive to write (default ~/.cache/agentops/agent-base.tar)
#   AGENT_BASE_REPO      image repository (default agentops/agent-base)
set -euo pipefail

repo="${AGENT_BASE_REPO:-agentops/agent-base}"
suite="${AGENT_BASE_SUITE:-bookworm}"
mirror="${AGENT_BASE_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${AGENT_BASE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/agentops"
deb_cache="${AGENT_BASE_DEB_CACHE:-$cache_root/debootstrap-agent-base}"
archive="${AGENT_BASE_ARCHIVE:-$cache_root/agent-base.tar}"
# What the agent's Dockerfile needs from a base: python3 with venv (and the
# pip wheel venv bootstraps from), CA certificates for TLS to the LLM provider.
packages=(python3 python3-venv ca-certificates)

say() { printf 'agent-base-image: %s\n' "$*" >&2; }

recipe_hash=$( { cat "$0"; printf '%s\n' "$suite" "$mirror" "${packages[@]}"; cat "$ca_bundle"; } \
  | sha256sum | cut -c1-12)
image="$repo:$recipe_hash"
stamp="$archive.recipe"

if [ -f "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe_hash" ]; then
  say "$archive is up to date ($image)"
  echo "$archive"
  exit 0
fi

if ! docker image inspect "$image" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  rootfs=$(mktemp -d /var/tmp/agent-base-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  mkdir -p "$deb_cache"

  say "debootstrap $suite into $rootfs (package cache: $deb_cache)"
  debootstrap --variant=minbase --cache-dir="$deb_cache" \
    --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$rootfs" "$mirror" >&2

  say "trimming the root filesystem"
  # TLS through this network's proxy needs its CA inside the image too.
  install -m 0644 "$ca_bundle" "$rootfs/usr/local/share/ca-certificates/controller-bundle.crt"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  : > "$rootfs/etc/machine-id"
  # mktemp made the directory 0700; it becomes the image's /, which a
  # non-root user must be able to traverse.
  chmod 0755 "$rootfs"

  say "importing $image"
  # One layer, a plain shell command: every Dockerfile RUN works on it.
  tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'CMD ["/bin/bash"]' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.opencontainers.image.title=agentops-agent-base org.agentops.recipe=$recipe_hash" \
    - "$image" >&2
fi
docker tag "$image" "$repo:$suite"

say "saving $repo:$suite to $archive"
mkdir -p "$(dirname "$archive")"
# Both tags in the archive: the role builds FROM the suite tag; the recipe tag
# says which recipe it came from.
docker save "$repo:$suite" "$image" -o "$archive.tmp"
mv -f "$archive.tmp" "$archive"
echo "$recipe_hash" > "$stamp"
echo "$archive"
