# The real node of the local cluster (up.sh --real-node): sourced by up.sh.
#
# kinfer-node-0 is a kubelet, containerd (runc, CNI bridge) and kube-proxy
# (nftables mode), all in a network namespace of this cluster's own, so that
# nothing they do touches the machine's network:
#
#   host netns                          node netns kinfer-nX
#   kinferX 198.18.X.1 (API server) <-veth-> uplink 198.18.X.2 (kubelet, node IP)
#                                           kbr0 198.18.X.129/25 (CNI bridge)
#                                             pods 198.18.X.130-254, each in a
#                                             netns containerd makes (under DIR)
#                                           198.19.X.0/24 (ClusterIPs) routed to kbr0
#
# X (1-250) is picked per cluster, so two clusters run side by side. The node
# netns has no default route: a pod's packet to any other address is refused
# there at once (no route, ICMP unreachable). On the host, the nftables table
# kinfer_nX drops whatever comes from 198.18.0.0/15 or goes to it on any
# interface but lo and kinfer*, and an "unreachable 198.18.0.0/15" route keeps
# the default route from ever carrying it.
#
# Everything created is recorded in DIR/node/net.env (names) and DIR/pids
# (processes); down.sh removes it in reverse (node_down below).

node_dir=$dir/node

# node_pick: X such that neither its netns nor its routes exist (under the
# port lock, so two up.sh never pick the same).
node_pick() {
	local x i
	for i in $(seq 1 100); do
		x=$((1 + RANDOM % 250))
		[ -e "/var/run/netns/kinfer-n$x" ] && continue
		ip link show "kinfer$x" >/dev/null 2>&1 && continue
		[ -n "$(ip route show 198.18.$x.0/24 2>/dev/null)$(ip route show 198.18.$x.2 2>/dev/null)" ] && continue
		nft list table inet "kinfer_n$x" >/dev/null 2>&1 && continue
		node_x=$x
		return 0
	done
	fail up "no free 198.18.X.0/24 for the real node"
}

# node_record KEY=VALUE: what down.sh must remove, written before it exists.
node_record() { echo "$1" >>"$node_dir/net.env"; }

node_net_up() {
	local x=$node_x ns=kinfer-n$node_x hv=kinfer$node_x
	node_host_ip=198.18.$x.1
	node_ip=198.18.$x.2
	node_pod_cidr=198.18.$x.128/25
	node_gw=198.18.$x.129
	node_ns=$ns
	mkdir -p "$node_dir"
	say "real node network: netns $ns, $hv $node_host_ip <-> $node_ip, pods $node_pod_cidr, services $service_cidr"
	node_record "NODE_X=$x"
	node_record "NODE_NETNS=$ns"
	ip netns add "$ns"
	node_record "NODE_LINK=$hv"
	ip link add "$hv" type veth peer name uplink netns "$ns"
	# The host side first: drop rules and the catch-all route before any
	# address of 198.18.0.0/15 exists on this machine.
	node_record "NODE_TABLE=kinfer_n$x"
	nft -f - <<NFT
table inet kinfer_n$x {
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr 198.18.0.0/15 oifname != "lo" oifname != "kinfer*" counter drop
		ip saddr 198.18.0.0/15 oifname != "lo" oifname != "kinfer*" counter drop
	}
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr 198.18.0.0/15 oifname != "kinfer*" counter drop
		ip daddr 198.18.0.0/15 oifname != "kinfer*" counter drop
	}
}
NFT
	node_record "NODE_ROUTE=unreachable 198.18.0.0/15 metric $((4000 + x))"
	ip route add unreachable 198.18.0.0/15 metric $((4000 + x))
	ip addr add "$node_host_ip" peer "$node_ip" dev "$hv"
	ip link set "$hv" up
	ip route add "$node_pod_cidr" via "$node_ip" dev "$hv"
	ip route add "$service_cidr" via "$node_ip" dev "$hv"
	# The node side: no default route.
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "$node_ip" peer "$node_host_ip" dev uplink
	ip -n "$ns" link set uplink up
	# The pods' bridge, made here (the CNI bridge plugin takes it as it is)
	# so that ClusterIPs have a route before the first pod: kube-proxy
	# rewrites what it serves; the rest finds no neighbour and fails.
	ip -n "$ns" link add kbr0 type bridge
	ip -n "$ns" addr add "$node_gw/25" dev kbr0
	ip -n "$ns" link set kbr0 up
	ip -n "$ns" route add "$service_cidr" dev kbr0
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
	# Pod -> ClusterIP -> pod on the same bridge needs bridged replies to pass
	# conntrack (br_netfilter); absent on some kernels, then skipped.
	ip netns exec "$ns" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
	mkdir -p "$node_dir/cni" "$node_dir/cni-ipam"
	cat >"$node_dir/cni/10-kinfer.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "kinfer-n$x",
  "plugins": [
    {
      "type": "bridge", "bridge": "kbr0", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$node_dir/cni-ipam",
        "ranges": [[{"subnet": "$node_pod_cidr", "gateway": "$node_gw"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "loopback"}
  ]
}
CNI
}

# in_node CMD...: CMD in the node's network namespace only (same mounts, so
# the kubelet's volume mounts are seen by runc).
in_node() { nsenter --net="/var/run/netns/$node_ns" "$@"; }

node_pki() {
	local p=$dir/pki
	sign kubelet "/O=system:nodes/CN=system:node:kinfer-node-0" client
	sign kube-proxy "/CN=system:kube-proxy" client
	sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
}

# node_kubeconfig FILE CERT: as kubeconfig, for the API server's address on
# the node's link.
node_kubeconfig() {
	kubeconfig "$1" "$2"
}

start_containerd() {
	local c=$node_dir/containerd
	mkdir -p "$c/root" "$c/state" "$c/opt" "$c/runc"
	node_record "NODE_CGROUP=kinfer-n$node_x"
	cat >"$c/config.toml" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
plugin_dir = ""
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$c/containerd.sock"
[ttrpc]
  address = "$c/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$c/runc"
TOML
	say "starting containerd (socket $c/containerd.sock)"
	start containerd nsenter --net="/var/run/netns/$node_ns" /usr/bin/containerd --config "$c/config.toml"
}

ctr_node() { ctr --address "$node_dir/containerd/containerd.sock" "$@"; }

start_kubelet() {
	local k=$node_dir/kubelet kc=$node_dir/kubelet.kubeconfig
	mkdir -p "$k" "$node_dir/pod-logs"
	node_kubeconfig "$kc" kubelet
	# Every v1 hierarchy gets the pods' parent cgroup (cgroupRoot), which
	# down.sh empties and removes.
	local h
	for h in /sys/fs/cgroup/*/; do
		[ -e "$h/cgroup.procs" ] && mkdir -p "$h/kinfer-n$node_x"
	done
	cat >"$node_dir/kubelet.yaml" <<CFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$dir/pki/ca.crt"}
authorization: {mode: AlwaysAllow}
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
cgroupDriver: cgroupfs
cgroupsPerQOS: false
cgroupRoot: /kinfer-n$node_x
enforceNodeAllocatable: []
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$node_dir/containerd/containerd.sock
podLogsDir: $node_dir/pod-logs
resolvConf: ""
staticPodPath: ""
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {}
evictionPressureTransitionPeriod: 0s
nodeStatusUpdateFrequency: 4s
nodeStatusReportFrequency: 20s
syncFrequency: 5s
fileCheckFrequency: 5s
maxPods: 110
rotateCertificates: false
serverTLSBootstrap: false
localStorageCapacityIsolation: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
CFG
	say "starting kubelet (node kinfer-node-0 on $node_ip)"
	start kubelet nsenter --net="/var/run/netns/$node_ns" "$bin/kubelet" \
		--config="$node_dir/kubelet.yaml" --kubeconfig="$kc" --root-dir="$k" \
		--cert-dir="$k/pki" --hostname-override=kinfer-node-0 --node-ip="$node_ip" \
		--node-labels=kinfer.io/real-node=true
}

start_kube_proxy() {
	local kc=$node_dir/kube-proxy.kubeconfig
	node_kubeconfig "$kc" kube-proxy
	cat >"$node_dir/kube-proxy.yaml" <<CFG
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: "$kc"}
hostnameOverride: kinfer-node-0
clusterCIDR: $node_pod_cidr
bindAddress: $node_ip
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$node_ip/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
CFG
	say "starting kube-proxy (nftables mode)"
	start kube-proxy nsenter --net="/var/run/netns/$node_ns" "$bin/kube-proxy" \
		--config="$node_dir/kube-proxy.yaml"
}

# node_images: the pause, base, operator and simulator images, built once per
# machine (images.sh) and imported into this node's containerd.
node_images() {
	local f
	for f in "$IMAGE_DIR"/*.tar; do
		ctr_node -n k8s.io images import "$f" >/dev/null 2>"$dir/logs/ctr-import.log" ||
			fail containerd "cannot import $f: $(cat "$dir/logs/ctr-import.log")"
	done
}

node_ready() { k wait --for=condition=Ready node/kinfer-node-0 --timeout=2s; }
proxy_healthy() { in_node curl -s --max-time 2 http://127.0.0.1:10256/healthz | grep -q lastUpdated; }

# node_gpus: fake GPUs as a device plugin and GPU feature discovery would
# show them: extended resources in status, the product labels.
node_gpus() {
	k label node kinfer-node-0 --overwrite \
		nvidia.com/gpu.present=true nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB \
		nvidia.com/gpu.memory=81920 nvidia.com/gpu.count=8 nvidia.com/mig.capable=true \
		nvidia.com/gpu.family=ampere >/dev/null
	k patch node kinfer-node-0 --subresource=status --type=merge -p \
		'{"status":{"capacity":{"nvidia.com/gpu":"8"},"allocatable":{"nvidia.com/gpu":"8"}}}' >/dev/null
	# The KWOK GPU nodes get the taint GPU nodes usually carry (kinfer's pods
	# tolerate it): pods of anything else, the operator's among them, go to
	# the one node where containers run.
	k taint node -l type=kwok nvidia.com/gpu=present:NoSchedule --overwrite >/dev/null
}
