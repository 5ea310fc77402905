#!/usr/bin/env bash
# The Kubernetes binaries of the k8s_agent tests (the control plane, the
# node's, and kubectl), built from Debian
# bookworm's own source package (1.20.5+really1.20.2; its orig tarball
# vendors every Go module), offline: no registry, GitHub or Go module proxy
# is reachable from these machines. Built once per source version and kept
# in ~/.cache/agentops/kubernetes/<version>-<digest>/bin (about 440 MB); the build
# takes about 10 minutes on 2 cores and 1.4 GB of memory.
#
#   scripts/k8s-binaries.sh            # prints the directory of the binaries
#
# The machine's apt sources are left alone: the deb-src line lives in a
# private apt configuration under the cache.
set -euo pipefail

cache=${AGENTOPS_CACHE:-$HOME/.cache/agentops}/kubernetes
apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
cat > "$apt_dir/sources.list" <<'SOURCES'
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SOURCES
apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=-"
             -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::Archives=$apt_dir/archives"
             -o "APT::Sandbox::User=root")

# The newest source version the archive has: the cache key. The index is
# read again once a day.
if [[ -z $(find "$apt_dir/lists" -name '*Sources*' -mmin -1440 2>/dev/null) ]]; then
  apt-get "${apt_private[@]}" update -qq >&2
fi
version=$(apt-cache "${apt_private[@]}" showsrc kubernetes | awk '/^Version:/ {print $2}' | sort -V | tail -1)
[[ -n $version ]] || { echo "k8s-binaries: no kubernetes source package in bookworm's archive" >&2; exit 1; }
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
# Keyed by its inputs: the source version and what is built from it.
out=$cache/$version-$(printf '%s\n' "${binaries[@]}" "-s -w" | sha256sum | cut -c1-12)
if [[ -f $out/bin/.complete ]]; then
  echo "$out/bin"
  exit 0
fi

# The toolchain the package builds with; installed once, like the test tools.
command -v /usr/lib/go-1.19/bin/go >/dev/null || {
  echo "k8s-binaries: installing golang-1.19-go and rsync (apt-get)" >&2
  # make test runs other layers beside this one: wait for dpkg's lock.
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -o DPkg::Lock::Timeout=600 -y -qq golang-1.19-go rsync >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -o DPkg::Lock::Timeout=600 -y -qq golang-1.19-go rsync >/dev/null; }
}

work=$cache/build-$version
rm -rf "$work" && mkdir -p "$work"
echo "k8s-binaries: fetching the kubernetes $version source package" >&2
(cd "$work" && apt-get "${apt_private[@]}" source --download-only -qq "kubernetes=$version" >&2)
(cd "$work" && dpkg-source --no-check -x kubernetes_*.dsc src >/dev/null)

# `make WHAT=...` generates the OpenAPI code plain `go build` lacks
# ("undefined: openapi.GetOpenAPIDefinitions"); -mod=vendor would ask for
# go.mod updates. Static binaries, without symbols (-s -w, as the project releases them).
echo "k8s-binaries: building ${binaries[*]} (about 10 minutes)" >&2
started=$(date +%s)
(cd "$work/src" && PATH=/usr/lib/go-1.19/bin:$PATH GOPROXY=off GOFLAGS='' CGO_ENABLED=0 GOCACHE=$work/gocache \
  make GOLDFLAGS="-s -w" WHAT="$(printf 'cmd/%s ' "${binaries[@]}")" >"$work/build.log" 2>&1) || {
  tail -30 "$work/build.log" >&2
  echo "k8s-binaries: the build failed; its log: $work/build.log" >&2
  exit 1
}
mkdir -p "$out/bin.partial"
for binary in "${binaries[@]}"; do
  cp "$work/src/_output/bin/$binary" "$out/bin.partial/"
done
touch "$out/bin.partial/.complete"
rm -rf "${out:?}/bin" && mv "$out/bin.partial" "$out/bin"
rm -rf "$work"
echo "k8s-binaries: built in $(( $(date +%s) - started )) s" >&2
echo "$out/bin"
