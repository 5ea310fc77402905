#!/usr/bin/env bash
# A real single-node Kubernetes (1.20, scripts/k8s-binaries.sh) for the
# k8s_agent tests: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd with runc, kubelet and kube-proxy, all in a
# private network and mount namespace, so that kube-proxy's iptables rules,
# the CNI bridge and the pods' network namespaces never touch the host (or
# its Docker Engine).
#
#   scripts/k8s-node.sh start    # prints KUBECONFIG=... and NETNS_PID=...
#   scripts/k8s-node.sh load <image-archive.tar>   # docker save output, into containerd
#   scripts/k8s-node.sh exec <command...>          # in the node's network namespace, with kubectl
#   scripts/k8s-node.sh stop
#
# Its state is under ${AGENTOPS_K8S_STATE:-/tmp/agentops-k8s}. Needs root and
# a Docker Engine (for the pause image); installs Debian's etcd-server,
# containernetworking-plugins and busybox-static when they are missing
# (containerd and runc come with docker.io). The pause image is busybox's
# shell waiting, loaded as agentops/pause:1: no registry is reachable. What
# this machine needs that a real node would not, and why:
# - containerd's restrict_oom_score_adj: runc may not lower the OOM score
#   adjustment below the container's own ("can't get final child's PID from
#   pipe: EOF" otherwise);
# - the node address on a bridge with no ports: this kernel has no dummy
#   interfaces;
# - the kernel settings kubelet insists on, bind-mounted over /proc/sys inside
#   the mount namespace (the real ones are read-only here and the host's);
# - a private tmpfs /run (otherwise /run/netns/cni-* leaks onto the host),
#   and a private /var/lib/cni (the CNI plugins' addresses and results);
# - the native snapshotter (the host's root may itself be an overlay).
set -euo pipefail

state=${AGENTOPS_K8S_STATE:-/tmp/agentops-k8s}
node_ip=10.200.0.2
node_name=agentops-k8s
service_cidr=10.96.0.0/16
pod_cidr=10.88.0.0/16

die() { echo "k8s-node: $*" >&2; exit 1; }

pki() {
  local pki=$state/pki
  [[ -f $pki/.complete ]] && return
  mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=agentops-k8s-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  # name, subject, extensions
  issue() {
    openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
      -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
  }
  issue apiserver "/CN=kube-apiserver" \
    "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1,IP:$node_ip,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  issue admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth"
  issue kubelet "/O=system:nodes/CN=system:node:$node_name" \
    "subjectAltName=IP:$node_ip,DNS:$node_name
extendedKeyUsage=clientAuth,serverAuth"
  issue apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  touch "$pki/.complete"
}

kubeconfig() {  # file, certificate name
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: agentops
    cluster: {server: "https://$node_ip:6443", certificate-authority: "$state/pki/ca.crt"}
users:
  - name: $2
    user: {client-certificate: "$state/pki/$2.crt", client-key: "$state/pki/$2.key"}
contexts:
  - name: agentops
    context: {cluster: agentops, user: $2, namespace: default}
current-context: agentops
EOF
}

# Everything below runs inside the namespaces (`start` re-executes this
# script there with `inside`).
inside() {
  local bin=$1 logs=$state/logs
  mkdir -p "$logs" "$state/cni" "$state/kubelet" "$state/containerd"
  mount -t tmpfs tmpfs /run
  mkdir -p /run/netns
  # libcni keeps each attachment's result under /var/lib/cni: the node's own.
  mkdir -p "$state/var-lib-cni" /var/lib/cni
  mount --bind "$state/var-lib-cni" /var/lib/cni
  ip link set lo up
  ip link add k8snode0 type bridge
  ip addr add "$node_ip/24" dev k8snode0
  ip link set k8snode0 up
  ip route add default dev k8snode0
  # The settings kubelet checks and would set, as it wants them.
  local setting value
  while read -r setting value; do
    printf '%s\n' "$value" > "$state/sysctl-${setting//\//-}"
    mount --bind "$state/sysctl-${setting//\//-}" "/proc/sys/$setting"
  done <<'EOF'
vm/overcommit_memory 1
vm/panic_on_oom 0
kernel/panic 10
kernel/panic_on_oops 1
kernel/keys/root_maxkeys 1000000
kernel/keys/root_maxbytes 25000000
EOF

  cat > "$state/cni/10-agentops.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "agentops", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  cat > "$state/containerd.toml" <<EOF
version = 2
root = "$state/containerd/root"
state = "/run/agentops-containerd"
[grpc]
  address = "$state/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "agentops/pause:1"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni"
EOF
  containerd --config "$state/containerd.toml" >"$logs/containerd.log" 2>&1 &
  etcd --data-dir "$state/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 >"$logs/etcd.log" 2>&1 &

  local pki=$state/pki
  "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --advertise-address="$node_ip" \
    --bind-address=0.0.0.0 --secure-port=6443 --service-cluster-ip-range="$service_cidr" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
    --kubelet-client-certificate="$pki/apiserver-kubelet.crt" --kubelet-client-key="$pki/apiserver-kubelet.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --authorization-mode=Node,RBAC \
    >"$logs/kube-apiserver.log" 2>&1 &
  kubeconfig "$state/admin.kubeconfig" admin
  kubeconfig "$state/kubelet.kubeconfig" kubelet
  "$bin/kube-controller-manager" --kubeconfig="$state/admin.kubeconfig" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false >"$logs/kube-controller-manager.log" 2>&1 &
  "$bin/kube-scheduler" --kubeconfig="$state/admin.kubeconfig" --leader-elect=false \
    >"$logs/kube-scheduler.log" 2>&1 &

  cat > "$state/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  x509: {clientCAFile: "$pki/ca.crt"}
  webhook: {enabled: false}
  anonymous: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failSwapOn: false
tlsCertFile: "$pki/kubelet.crt"
tlsPrivateKeyFile: "$pki/kubelet.key"
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"}
EOF
  "$bin/kubelet" --config="$state/kubelet.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$state/containerd.sock" \
    --root-dir="$state/kubelet" --node-ip="$node_ip" --hostname-override="$node_name" \
    --network-plugin=cni --cni-bin-dir=/usr/lib/cni --cni-conf-dir="$state/cni" \
    >"$logs/kubelet.log" 2>&1 &
  "$bin/kube-proxy" --kubeconfig="$state/admin.kubeconfig" --hostname-override="$node_name" \
    --cluster-cidr="$pod_cidr" --proxy-mode=iptables --conntrack-max-per-core=0 >"$logs/kube-proxy.log" 2>&1 &
  wait
}

netns_pid() { cat "$state/netns.pid" 2>/dev/null; }

packages() {
  local missing=()
  command -v etcd >/dev/null || missing+=(etcd-server)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  [[ -x /bin/busybox ]] || missing+=(busybox-static)
  command -v containerd >/dev/null || missing+=(containerd runc)
  if ((${#missing[@]})); then
    echo "k8s-node: installing ${missing[*]} (apt-get)" >&2
    # make test runs other layers beside this one: wait for dpkg's lock.
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -o DPkg::Lock::Timeout=600 -y -qq "${missing[@]}" >/dev/null; }
  fi
}

# The pod sandbox image: busybox's shell waiting for a signal, no registry.
# Its archive is kept, named by the busybox it holds; prints its path.
pause_image() {
  local archive root
  archive=$state/pause-$(dpkg-query -W -f='${Version}' busybox-static).tar
  [[ -s $archive ]] && { echo "$archive"; return; }
  root=$(mktemp -d)
  mkdir -p "$root/bin"
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  ln -s busybox "$root/bin/sleep"
  printf '#!/bin/sh\ntrap "exit 0" TERM INT\nwhile :; do sleep 3600 & wait $!; done\n' > "$root/pause"
  chmod 755 "$root/pause"
  tar -C "$root" -c . | docker import --change 'ENTRYPOINT ["/pause"]' - agentops/pause:1 >/dev/null
  rm -rf "$root"
  docker save agentops/pause:1 -o "$archive.partial" && mv "$archive.partial" "$archive"
  echo "$archive"
}

case ${1:-} in
  start)
    packages
    bin=$(bash "$(dirname "$0")/k8s-binaries.sh")
    pid=$(netns_pid || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      echo "KUBECONFIG=$state/admin.kubeconfig"; echo "NETNS_PID=$pid"; exit 0
    fi
    rm -rf "$state/etcd" "$state/kubelet" "$state/containerd" "$state/logs" "$state/var-lib-cni"
    mkdir -p "$state"
    echo "$bin" > "$state/bin.path"
    pki
    pause=$(pause_image)
    started=$(date +%s)
    setsid unshare --net --mount --propagation private --fork -- bash "$0" inside "$bin" </dev/null \
      >"$state/inside.log" 2>&1 &
    echo $! > "$state/unshare.pid"
    # The process whose namespaces the node lives in: unshare's child.
    for _ in $(seq 50); do
      pid=$(pgrep -P "$(cat "$state/unshare.pid")" | head -1 || true)
      [[ -n $pid ]] && break
      sleep 0.1
    done
    [[ -n $pid ]] || die "the namespaces did not start: $(tail -5 "$state/inside.log")"
    echo "$pid" > "$state/netns.pid"
    export KUBECONFIG=$state/admin.kubeconfig
    for _ in $(seq 120); do
      if nsenter -t "$pid" -n "$bin/kubectl" get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' \
         2>/dev/null | grep -q True; then
        ctr --address "$state/containerd.sock" -n k8s.io images import "$pause" >/dev/null
        echo "k8s-node: node Ready in $(( $(date +%s) - started )) s" >&2
        echo "KUBECONFIG=$state/admin.kubeconfig"; echo "NETNS_PID=$pid"; exit 0
      fi
      sleep 1
    done
    tail -20 "$state/logs/kubelet.log" >&2 || true
    die "the node was not Ready in 120 s; logs in $state/logs"
    ;;
  inside) shift; inside "$@" ;;
  load)
    [[ -f ${2:-} ]] || die "load: give an image archive (docker save output)"
    ctr --address "$state/containerd.sock" -n k8s.io images import --all-platforms "$2" >/dev/null
    ;;
  exec)
    shift
    pid=$(netns_pid) || die "not started"
    PATH=$(cat "$state/bin.path"):$PATH KUBECONFIG=$state/admin.kubeconfig nsenter -t "$pid" -n "$@"
    ;;
  stop)
    if [[ -f $state/unshare.pid ]]; then
      # The pods' processes live in their own PID namespaces under containerd's
      # shims and would outlive the node: stop the kubelet (nothing restarts
      # them then), kill every container, then the node itself.
      pkill -f -- "--config=$state/kubelet.yaml" 2>/dev/null || true
      ctr_node=(ctr --address "$state/containerd.sock" -n k8s.io)
      for task in $("${ctr_node[@]}" tasks ls -q 2>/dev/null); do
        "${ctr_node[@]}" tasks kill --all --signal SIGKILL "$task" 2>/dev/null || true
      done
      for _ in $(seq 50); do
        [[ -z $("${ctr_node[@]}" tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"') ]] && break
        sleep 0.1
      done
      kill -- -"$(cat "$state/unshare.pid")" 2>/dev/null || true
      sleep 2
      pkill -KILL -f "$state/" 2>/dev/null || true
    fi
    rm -f "$state/unshare.pid" "$state/netns.pid"
    ;;
  *) die "usage: $0 start|load <archive>|exec <command>|stop" ;;
esac
