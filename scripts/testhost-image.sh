#!/usr/bin/env bash
# Builds the Debian 12 test-host image (systemd as PID 1, python3) locally with
# debootstrap + `docker import`: no registry is reachable from our build machines.
# The tag is a hash of this recipe, so an unchanged recipe is never rebuilt.
# Prints the image reference on stdout; progress goes to stderr.
set -euo pipefail

repo="agentops/testhost"
suite="${TESTHOST_SUITE:-bookworm}"
mirror="${TESTHOST_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${TESTHOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
cache_dir="${TESTHOST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentops/debootstrap}"
packages=(
  systemd systemd-sysv dbus python3 python3-venv python3-apt sudo iproute2
  curl ca-certificates procps less
)

say() { printf 'testhost-image: %s\n' "$*" >&2; }

# Files copied into the image's Python (see agentops_bytecode_cache.py).
python_files=("$(dirname "$0")"/testhost/agentops_bytecode_cache.{py,pth})

# The CA bundle is part of the recipe: a new proxy CA must produce a new image.
recipe_hash=$( { cat "$0" "${python_files[@]}"; printf '%s\n' "$suite" "$mirror" "${packages[@]}"; cat "$ca_bundle"; } \
  | sha256sum | cut -c1-12)
image="$repo:$recipe_hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  say "$image is up to date"
  docker tag "$image" "$repo:latest"
  echo "$image"
  exit 0
fi

command -v debootstrap >/dev/null || {
  say "installing debootstrap (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}

rootfs=$(mktemp -d /var/tmp/testhost-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$cache_dir"

say "debootstrap $suite into $rootfs (package cache: $cache_dir)"
debootstrap --variant=minbase --cache-dir="$cache_dir" \
  --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$rootfs" "$mirror" >&2

say "configuring the root filesystem"
# TLS through this network's proxy needs its CA inside the image too.
install -m 0644 "$ca_bundle" "$rootfs/usr/local/share/ca-certificates/controller-bundle.crt"
chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
# Ansible's modules arrive as zips, which Python compiles on every import:
# the hook keeps their bytecode, as __pycache__ does for files on disk.
site_packages=$(chroot "$rootfs" python3 -c 'import site; print(site.getsitepackages()[0])')
install -d "$rootfs$site_packages"
install -m 0644 "${python_files[@]}" "$rootfs$site_packages/"
# Units that have no meaning in a container, or wait for hardware, stay off.
for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
    systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
    systemd-remount-fs.service systemd-firstboot.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo "container" > "$rootfs/etc/hostname"
: > "$rootfs/etc/machine-id"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
# The lists are gone: an old mtime makes `apt: cache_valid_time` refresh them.
touch -d @0 "$rootfs/var/lib/apt/lists"

say "importing $image"
tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change "LABEL org.opencontainers.image.title=agentops-testhost org.agentops.recipe=$recipe_hash" \
  - "$image" >&2
docker tag "$image" "$repo:latest"
echo "$image"
