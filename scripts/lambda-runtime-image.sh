#!/usr/bin/env bash
# Builds the images moto server needs to really run AWS Lambda Python
# functions (runtime python3.13) in Docker, with no registry: moto would pull
# ghcr.io/shogo82148/lambda-python or lambci/lambda for the function and
# busybox to fill the code volume, and none of those can be pulled here.
#   agentops/lambda-python:<recipe>  Debian 13 (trixie, python3.13) from
#       debootstrap + `docker import`, the CA bundle, boto3 (as the real
#       Lambda runtime ships it; wheels fetched on the host, installed into the
#       rootfs, so nothing is downloaded inside the image) and
#       lambda-runtime/bootstrap.py as the entrypoint that moto calls as
#       `IMAGE HANDLER EVENT_JSON`. Also tagged :python3.13.
#   busybox:latest  (only if no busybox image exists) Debian's busybox-static
#       with the applets moto's `busybox sleep 100` + put_archive step uses.
# Both are saved as one archive (default ~/.cache/agentops/lambda-runtime.tar)
# for hosts that only `docker load`. The tag is a hash of this recipe (this
# script, bootstrap.py, the pins and the CA bundle): an unchanged recipe is
# neither rebuilt nor saved again, and a current archive is loaded instead of
# rebuilding when the engine lacks the images. Progress goes to stderr; prints
# the image reference on stdout, the value for MOTO_DOCKER_LAMBDA_IMAGE.
#   LAMBDA_RUNTIME_ARCHIVE   archive to write
#   LAMBDA_RUNTIME_REPO      image repository (default agentops/lambda-python)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo="${LAMBDA_RUNTIME_REPO:-agentops/lambda-python}"
suite="${LAMBDA_RUNTIME_SUITE:-trixie}"
mirror="${LAMBDA_RUNTIME_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${LAMBDA_RUNTIME_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/agentops"
deb_cache="${LAMBDA_RUNTIME_DEB_CACHE:-$cache_root/debootstrap-lambda-python}"
wheel_cache="$cache_root/lambda-runtime-wheels"
archive="${LAMBDA_RUNTIME_ARCHIVE:-$cache_root/lambda-runtime.tar}"
bootstrap="$here/lambda-runtime/bootstrap.py"
packages=(python3 ca-certificates)
# boto3 and its whole dependency closure, pinned so the recipe (and so the
# tag) only changes when this list does. All pure-Python wheels.
python_pins=(boto3==1.44.8 botocore==1.44.8 s3transfer==0.19.3 jmespath==1.1.0
  python-dateutil==2.9.0.post0 six==1.17.0 urllib3==2.8.0)
busybox_applets=(sh sleep cp mkdir chmod ls cat rm tar unzip)

say() { printf 'lambda-runtime-image: %s\n' "$*" >&2; }

recipe_hash=$( { cat "$0" "$bootstrap"; printf '%s\n' "$suite" "$mirror" "${packages[@]}" \
  "${python_pins[@]}"; cat "$ca_bundle"; } | sha256sum | cut -c1-12)
image="$repo:$recipe_hash"
stamp="$archive.recipe"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
archive_current() { [ -f "$archive" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe_hash" ]; }

ensure_debootstrap() {
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (apt-get)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
}

build_runtime() {
  ensure_debootstrap
  local rootfs
  rootfs=$(mktemp -d /var/tmp/lambda-python-rootfs.XXXXXX)
  # shellcheck disable=SC2064  # expand now: $rootfs is local
  trap "rm -rf '$rootfs'" EXIT
  mkdir -p "$deb_cache" "$wheel_cache"

  say "debootstrap $suite into $rootfs (package cache: $deb_cache)"
  debootstrap --variant=minbase --cache-dir="$deb_cache" \
    --include="$(IFS=,; echo "${packages[*]}")" "$suite" "$rootfs" "$mirror" >&2

  say "boto3 wheels for python3.13 (cache: $wheel_cache)"
  python3 -m pip download -q --only-binary=:all: --python-version 3.13 --implementation py \
    --dest "$wheel_cache" "${python_pins[@]}" >&2
  # Installed by the host's pip into the rootfs; the image never reaches PyPI.
  # /var/runtime as in real Lambda: moto mounts the layers volume over /opt.
  python3 -m pip install -q --no-index --find-links "$wheel_cache" --only-binary=:all: \
    --python-version 3.13 --implementation py --no-compile --no-deps \
    --target "$rootfs/var/runtime" "${python_pins[@]}" >&2
  install -m 0644 "$bootstrap" "$rootfs/var/runtime/bootstrap.py"
  # Byte-compile with the image's python3.13: each invoke is a fresh
  # container, so .pyc files written at run time would be thrown away.
  chroot "$rootfs" python3 -m compileall -q /var/runtime >/dev/null
  mkdir -p "$rootfs/var/task"

  say "trimming the root filesystem"
  # TLS through this network's proxy needs its CA inside the image too.
  install -m 0644 "$ca_bundle" "$rootfs/usr/local/share/ca-certificates/controller-bundle.crt"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1 || true
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/*.log "$rootfs"/var/cache/debconf/*-old
  : > "$rootfs/etc/machine-id"
  chmod 0755 "$rootfs"

  say "importing $image"
  tar -C "$rootfs" --numeric-owner -c . | docker import \
    --change 'ENTRYPOINT ["/usr/bin/python3", "/var/runtime/bootstrap.py"]' \
    --change 'WORKDIR /var/task' \
    --change 'ENV LANG=C.UTF-8 LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime' \
    --change "LABEL org.opencontainers.image.title=agentops-lambda-python org.agentops.recipe=$recipe_hash" \
    - "$image" >&2
  rm -rf "$rootfs"
  trap - EXIT
}

build_busybox() {
  local work
  work=$(mktemp -d /var/tmp/busybox-image.XXXXXX)
  # shellcheck disable=SC2064  # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  say "busybox:latest from Debian's busybox-static"
  # Root downloads into the private directory (no _apt sandbox warning).
  local get=(apt-get download -q -o APT::Sandbox::User=root busybox-static)
  (cd "$work" && "${get[@]}" >&2) || { apt-get update -qq >&2 && (cd "$work" && "${get[@]}" >&2); }
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
  mkdir -p "$work/root/bin" "$work/root/tmp" "$work/root/etc"
  chmod 1777 "$work/root/tmp"
  install -m 0755 "$work/deb/bin/busybox" "$work/root/bin/busybox"
  local applet
  for applet in "${busybox_applets[@]}"; do ln -s busybox "$work/root/bin/$applet"; done
  tar -C "$work/root" --numeric-owner --owner=0 --group=0 -c . | docker import \
    --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - busybox:latest >&2
  rm -rf "$work"
  trap - EXIT
}

if ! have_image "$image" || ! have_image busybox:latest; then
  if archive_current; then
    say "loading $archive"
    docker load -i "$archive" >&2
  fi
  have_image "$image" || build_runtime
  have_image busybox:latest || build_busybox
fi
docker tag "$image" "$repo:python3.13"

if archive_current; then
  say "$archive is up to date ($image)"
else
  say "saving $image and busybox:latest to $archive"
  mkdir -p "$(dirname "$archive")"
  docker save "$image" "$repo:python3.13" busybox:latest -o "$archive.tmp"
  mv -f "$archive.tmp" "$archive"
  echo "$recipe_hash" > "$stamp"
fi
echo "$image"
