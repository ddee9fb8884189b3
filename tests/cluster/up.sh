#!/usr/bin/env bash
# Start a real local Kubernetes control plane in DIR, for tests and the demo.
#
#   tests/cluster/up.sh [--real-node] DIR
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake
# GPU nodes from nodes.yaml, pod lifecycle from kwok/*.yaml) run as local
# processes on 127.0.0.1, on free ports chosen at random, so that several
# clusters can run at once. Everything lives in DIR:
#   DIR/kubeconfig   admin kubeconfig (context kinfer-local)
#   DIR/env          KEY=VALUE lines: KUBECONFIG, KINFER_APISERVER, ports, BIN
#                    (use: set -a; . DIR/env; set +a)
#   DIR/pki          CA, serving and client certificates, service-account keys
#   DIR/logs/N.log   each process's output;  DIR/pids/N.pid  each process's PID
# Stop with tests/cluster/down.sh DIR (up.sh calls it itself when it fails).
#
# --real-node (or KINFER_REAL_NODE=1) adds kinfer-node-0: a kubelet,
# containerd and kube-proxy (nftables) in a network namespace of its own,
# pods on 198.18.X.128/25, ClusterIPs on 198.19.X.0/24, the images of
# images.sh imported (node.sh says how, and what keeps packets on the
# machine). The API server then listens on 198.18.X.1 (its end of the node's
# link) instead of 127.0.0.1; DIR/env says where. About 15 s more.
#
# Settings (environment):
#   KINFER_POD_CIDR   pod IPs, as kwok's --cidr: the first IP given, then up
#                     (default 127.77.0.1/16). Loopback pod IPs let a test
#                     serve a fake pod on 127.77.x.y, but the API server
#                     refuses loopback addresses in EndpointSlices and
#                     Endpoints, so Services get no endpoints; a test that
#                     needs those sets e.g. 10.244.0.1/16 (never reachable).
#   KINFER_UP_TIMEOUT seconds to wait for readiness (default 90)
#   KINFER_KCM_CONTROLLERS  kube-controller-manager --controllers
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

real_node=${KINFER_REAL_NODE:-0}
if [ "${1:-}" = --real-node ]; then real_node=1; shift; fi
[ $# -eq 1 ] || { echo "usage: $0 [--real-node] DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
# Pod IPs: a loopback /16 of this cluster's own (127.X.0.0/16, X picked at
# random among those no listener uses), so the model-server simulators of
# two clusters on one machine never answer for each other's pods.
pick_pod_cidr() {
	local x i
	for i in $(seq 1 50); do
		x=$((64 + RANDOM % 190))
		if ! ss -Htln 2>/dev/null | awk '{print $4}' | grep -q "^127\.$x\."; then
			echo "127.$x.0.1/16"
			return
		fi
	done
	echo "127.77.0.1/16"
}
pod_cidr=${KINFER_POD_CIDR:-$(pick_pod_cidr)}
timeout=${KINFER_UP_TIMEOUT:-90}
# ClusterIPs on 198.19.0.0/16 (benchmarking addresses, never routed); with
# the real node, a /24 of this cluster's own (routed to its node netns).
service_cidr=198.19.0.0/16
service_ip=198.19.0.1   # first IP of service_cidr: the "kubernetes" Service
api_host=127.0.0.1
lock=${TMPDIR:-/tmp}/kinfer-cluster-ports.lock
t_start=$SECONDS
up_ok=0

say() { printf 'kinfer-cluster: %s\n' "$*" >&2; }

# On any failure (including set -e and signals) stop what was started.
cleanup() {
	[ "$up_ok" = 1 ] && return 0
	say "failed; stopping what was started in $dir"
	"$here/down.sh" "$dir" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# fail NAME MESSAGE: report, show the tail of NAME's log, exit (cleanup runs).
fail() {
	say "ERROR: $2"
	if [ -f "$dir/logs/$1.log" ]; then
		say "last lines of $dir/logs/$1.log:"
		tail -n 25 "$dir/logs/$1.log" >&2
	fi
	exit 1
}

# refuse_running: a second up.sh on a live DIR would orphan the first cluster.
# A PID counts only while its process still names DIR in its arguments.
refuse_running() {
	local f pid
	for f in "$dir"/pids/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
			up_ok=1   # not ours to stop
			say "ERROR: $dir already has a running cluster (pid $pid); run down.sh first"
			exit 1
		fi
	done
}

# fresh_dir: a stopped cluster's state is discarded; logs are started afresh.
fresh_dir() {
	# A real node's leftovers (a killed up.sh, a down.sh that could not
	# finish) are removed by what they recorded; never rm -rf across a mount.
	[ -f "$dir/node/net.env" ] && "$here/down.sh" "$dir"
	if findmnt -rn -o TARGET | grep -q "^$dir/"; then
		up_ok=1
		say "ERROR: mounts remain under $dir (findmnt); run down.sh $dir"
		exit 1
	fi
	rm -rf "$dir/etcd" "$dir/pids" "$dir/pki" "$dir/logs" "$dir/kwok-home" "$dir/node"
	mkdir -p "$dir/pids" "$dir/pki" "$dir/logs" "$dir/etcd" "$dir/kwok-home"
	chmod 700 "$dir/etcd" "$dir/pki"
}

# --- ports -----------------------------------------------------------------

# Ports come from below the kernel's ephemeral range, so that outgoing
# connections never hold one of them.
port_range() {
	local lo=32768
	[ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	if [ "$lo" -gt 21000 ]; then echo "20000 $((lo - 1))"; else echo "20000 60000"; fi
}

port_in_use() { [ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]; }

# pick_port: set $port to a random free port not already picked by this run.
pick_port() {
	local lo hi
	read -r lo hi < <(port_range)
	for _ in $(seq 1 200); do
		port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		case " $picked " in *" $port "*) continue ;; esac
		port_in_use "$port" && continue
		picked="$picked $port"
		return 0
	done
	fail up "no free port found in $lo-$hi"
}

# Ports are picked, and bound, under one lock: two up.sh running at once
# cannot pick the same free port. The lock is released once all are bound.
lock_ports() {
	exec 9>"$lock"
	flock -w 180 9 || fail up "could not take $lock within 180 s"
}
unlock_ports() { flock -u 9; exec 9>&-; }

pick_ports() {
	picked=""
	pick_port; etcd_port=$port
	pick_port; etcd_peer_port=$port
	pick_port; api_port=$port
	pick_port; kcm_port=$port
	pick_port; sched_port=$port
	pick_port; kwok_port=$port
}

# --- certificates ----------------------------------------------------------

openssl_cnf() {
	cat <<'CNF'
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = @sans
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
[sans]
DNS.1 = localhost
DNS.2 = kubernetes
DNS.3 = kubernetes.default
DNS.4 = kubernetes.default.svc
DNS.5 = kubernetes.default.svc.cluster.local
IP.1 = 127.0.0.1
CNF
	echo "IP.2 = $service_ip"
	[ "$api_host" = 127.0.0.1 ] || echo "IP.3 = $api_host"
}

# ECDSA P-256 keys: quick to make, accepted by every component.
new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSION: NAME.key and NAME.crt signed by the CA.
sign() {
	local p=$dir/pki
	new_key "$p/$1.key"
	openssl req -new -key "$p/$1.key" -subj "$2" -config "$p/openssl.cnf" -out "$p/$1.csr"
	openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
		-days 3650 -extfile "$p/openssl.cnf" -extensions "$3" -out "$p/$1.crt" 2>/dev/null
	rm -f "$p/$1.csr"
}

make_pki() {
	local p=$dir/pki
	say "generating certificates in $p"
	openssl_cnf >"$p/openssl.cnf"
	new_key "$p/ca.key"
	openssl req -x509 -new -key "$p/ca.key" -subj "/CN=kinfer-local-ca" -days 3650 \
		-config "$p/openssl.cnf" -extensions ca -out "$p/ca.crt"
	sign apiserver "/CN=kube-apiserver" server
	sign admin "/O=system:masters/CN=kinfer-admin" client
	sign controller-manager "/CN=system:kube-controller-manager" client
	sign scheduler "/CN=system:kube-scheduler" client
	# kwok writes status for nodes and pods, leases and events anywhere.
	sign kwok "/O=system:masters/CN=kwok" client
	[ "$real_node" = 1 ] && node_pki
	new_key "$p/sa.key"
	openssl pkey -in "$p/sa.key" -pubout -out "$p/sa.pub"
}

# kubeconfig FILE CERT_NAME: a kubeconfig with everything embedded.
kubeconfig() {
	local p=$dir/pki
	cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kinfer-local
  cluster:
    server: https://$api_host:$api_port
    certificate-authority-data: $(base64 -w0 "$p/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$p/$2.crt")
    client-key-data: $(base64 -w0 "$p/$2.key")
contexts:
- name: kinfer-local
  context: {cluster: kinfer-local, user: $2}
current-context: kinfer-local
KC
	chmod 600 "$1"
}

write_env() {
	cat >"$dir/env" <<ENV
# kinfer local cluster; use: set -a; . $dir/env; set +a
KUBECONFIG=$dir/kubeconfig
KINFER_APISERVER=https://$api_host:$api_port
KINFER_REAL_NODE=$real_node
KINFER_CLUSTER_DIR=$dir
KINFER_ETCD_PORT=$etcd_port
KINFER_ETCD_PEER_PORT=$etcd_peer_port
KINFER_APISERVER_PORT=$api_port
KINFER_CONTROLLER_MANAGER_PORT=$kcm_port
KINFER_SCHEDULER_PORT=$sched_port
KINFER_KWOK_PORT=$kwok_port
KINFER_POD_CIDR=$pod_cidr
BIN=$bin
ENV
	[ "$real_node" = 1 ] && cat >>"$dir/env" <<ENV
KINFER_NODE_NETNS=$node_ns
KINFER_NODE_IP=$node_ip
KINFER_NODE_POD_CIDR=$node_pod_cidr
KINFER_SERVICE_CIDR=$service_cidr
KINFER_CONTAINERD_SOCK=$node_dir/containerd/containerd.sock
KINFER_IMAGE_DIR=$IMAGE_DIR
ENV
	return 0
}

# --- processes -------------------------------------------------------------

# start NAME CMD...: run in the background with output to its log; its PID is
# recorded and NAME appended to pids/order (down.sh stops in reverse). The
# port lock (fd 9) and our stdin/stdout are not passed on: a caller reading
# up.sh's output must not wait for the daemons.
start() {
	local name=$1
	shift
	# Keep the exact command so restart.sh can start it again the same way.
	mkdir -p "$dir/cmd"
	printf '%q ' "$@" >"$dir/cmd/$name"
	"$@" </dev/null >"$dir/logs/$name.log" 2>&1 9>&- &
	echo $! >"$dir/pids/$name.pid"
	echo "$name" >>"$dir/pids/order"
}

alive() { kill -0 "$(cat "$dir/pids/$1.pid" 2>/dev/null)" 2>/dev/null; }

# wait_for NAME WHAT SECONDS CMD...: poll CMD until it succeeds; fail if NAME
# exits or the time runs out.
wait_for() {
	local name=$1 what=$2 deadline=$((SECONDS + $3))
	shift 3
	until "$@" >/dev/null 2>&1; do
		alive "$name" || fail "$name" "$name exited while waiting for $what"
		[ "$SECONDS" -lt "$deadline" ] || fail "$name" "timed out waiting for $what"
		sleep 0.2
	done
}

listening() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
k() { "$bin/kubectl" --kubeconfig "$dir/kubeconfig" --request-timeout=5s "$@"; }
https_ok() { [ "$(curl -sk --max-time 3 "https://127.0.0.1:$1/healthz")" = ok ]; }
api_ok() { [ "$(curl -sk --max-time 3 "https://$api_host:$api_port/healthz")" = ok ]; }

start_etcd() {
	say "starting etcd on 127.0.0.1:$etcd_port (peer $etcd_peer_port)"
	# No fsync: the data is thrown away with DIR, and fsync is most of the cost.
	start etcd "$bin/etcd" --name=kinfer --data-dir="$dir/etcd" \
		--listen-client-urls="http://127.0.0.1:$etcd_port" \
		--advertise-client-urls="http://127.0.0.1:$etcd_port" \
		--listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
		--initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster="kinfer=http://127.0.0.1:$etcd_peer_port" \
		--unsafe-no-fsync --log-level=warn
	wait_for etcd "etcd health" "$(left)" etcd_healthy
}
etcd_healthy() { curl -s --max-time 3 "http://127.0.0.1:$etcd_port/health" | grep -q '"health":"true"'; }

start_apiserver() {
	local p=$dir/pki
	local extra=()
	say "starting kube-apiserver on https://$api_host:$api_port"
	# No endpoint reconciler on loopback: it would write 127.0.0.1 into the
	# Endpoints of the "kubernetes" Service, which validation refuses, every
	# 10 s. With the real node, pods reach it there (198.18.X.1), and the
	# API server reaches the kubelet by its InternalIP.
	if [ "$real_node" = 1 ]; then
		extra=(--endpoint-reconciler-type=lease --kubelet-preferred-address-types=InternalIP
			--kubelet-client-certificate="$p/apiserver-kubelet-client.crt"
			--kubelet-client-key="$p/apiserver-kubelet-client.key")
	else
		extra=(--endpoint-reconciler-type=none)
	fi
	start kube-apiserver "$bin/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address="$api_host" --advertise-address="$api_host" --secure-port="$api_port" \
		--cert-dir="$p" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
		--client-ca-file="$p/ca.crt" \
		--authorization-mode=Node,RBAC \
		--service-cluster-ip-range="$service_cidr" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$p/sa.pub" \
		--service-account-signing-key-file="$p/sa.key" \
		--allow-privileged=true --profiling=false "${extra[@]}"
}

start_controller_manager() {
	local p=$dir/pki kc=$dir/controller-manager.kubeconfig
	say "starting kube-controller-manager on https://127.0.0.1:$kcm_port"
	kubeconfig "$kc" controller-manager
	# Client certificates are checked against our CA directly (skip-lookup):
	# there is no front proxy, so the in-cluster lookup would only log errors.
	# root-ca-cert-publisher writes kube-root-ca.crt into each namespace, which
	# every projected service-account token volume needs. The HPA controller
	# runs every 5 s (15 s by default): scenario.autoscaler_conflict's
	# HorizontalPodAutoscaler acts sooner.
	start kube-controller-manager "$bin/kube-controller-manager" \
		--kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
		--authentication-skip-lookup --client-ca-file="$p/ca.crt" \
		--bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$p/controller-manager" \
		--leader-elect=false --use-service-account-credentials=true \
		--controllers="${KINFER_KCM_CONTROLLERS:-deployment,replicaset,garbagecollector,namespace,nodelifecycle,taint-eviction-controller,podgc,disruption,serviceaccount,serviceaccount-token,endpoint,endpointslice,root-ca-cert-publisher,clusterrole-aggregation,resourcequota,horizontalpodautoscaling}" \
		--horizontal-pod-autoscaler-sync-period=5s \
		--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
		--profiling=false
}

start_scheduler() {
	local p=$dir/pki kc=$dir/scheduler.kubeconfig
	say "starting kube-scheduler on https://127.0.0.1:$sched_port"
	kubeconfig "$kc" scheduler
	cat >"$dir/scheduler.yaml" <<CFG
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection: {kubeconfig: "$kc"}
leaderElection: {leaderElect: false}
CFG
	start kube-scheduler "$bin/kube-scheduler" --config="$dir/scheduler.yaml" \
		--authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
		--authentication-skip-lookup --client-ca-file="$p/ca.crt" \
		--bind-address=127.0.0.1 --secure-port="$sched_port" --cert-dir="$p/scheduler"
}

start_kwok() {
	local kc=$dir/kwok.kubeconfig f configs=()
	say "starting kwok on http://127.0.0.1:$kwok_port (pod CIDR $pod_cidr)"
	kubeconfig "$kc" kwok
	for f in "$here"/kwok/*.yaml; do configs+=(--config="$f"); done
	# HOME is DIR's own so that no ~/.kwok/kwok.yaml of the user's is loaded.
	start kwok env HOME="$dir/kwok-home" "$bin/kwok" "${configs[@]}" --kubeconfig="$kc" \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--cidr="$pod_cidr" --node-ip=127.0.0.1 --node-lease-duration-seconds=40 \
		--server-address="127.0.0.1:$kwok_port"
}

# left: seconds until the overall readiness deadline (at least 1).
left() {
	local n=$((deadline - SECONDS))
	if [ "$n" -gt 1 ]; then echo "$n"; else echo 1; fi
}

kwok_healthy() { [ "$(curl -s --max-time 3 "http://127.0.0.1:$kwok_port/healthz")" = ok ]; }
readyz() { [ "$(k get --raw /readyz)" = ok ]; }
default_sa() { k -n default get serviceaccount default; }
nodes_ready() {
	k wait --for=condition=Ready node -l type=kwok --timeout=2s
}

# node_main: the real node joins (containerd was started with the API server).
node_main() {
	wait_for containerd "containerd's socket" "$(left)" ctr_node version
	say "importing the images into containerd"
	node_images
	start_kubelet
	start_kube_proxy
	wait_for kubelet "node kinfer-node-0 Ready" "$(left)" node_ready
	wait_for kube-proxy "kube-proxy /healthz" "$(left)" proxy_healthy
	node_gpus || fail kube-apiserver "could not label kinfer-node-0"
	say "kinfer-node-0 is Ready (netns $node_ns, pods on $node_pod_cidr)"
}

main() {
	refuse_running
	bin=$("$here/build.sh" | tail -n 1) || fail up "build.sh failed"
	[ -x "$bin/kube-apiserver" ] || fail up "build.sh gave no usable bin folder ($bin)"
	if [ "$real_node" = 1 ]; then
		. "$here/node.sh"
		IMAGE_DIR=$("$here/images.sh" | tail -n 1) || fail up "images.sh failed"
		. "$IMAGE_DIR/images.env"
	fi
	fresh_dir

	lock_ports
	pick_ports
	if [ "$real_node" = 1 ]; then
		node_pick
		service_cidr=198.19.$node_x.0/24
		service_ip=198.19.$node_x.1
		api_host=198.18.$node_x.1
		node_net_up
	fi
	make_pki
	kubeconfig "$dir/kubeconfig" admin
	write_env
	deadline=$((SECONDS + timeout))
	start_etcd
	start_apiserver
	# The other components exit if RBAC is not bootstrapped yet: wait for it.
	say "waiting for kube-apiserver /readyz"
	wait_for kube-apiserver "/readyz" "$(left)" readyz
	[ "$real_node" = 1 ] && start_containerd
	start_controller_manager
	start_scheduler
	start_kwok
	wait_for kube-controller-manager "port $kcm_port" "$(left)" listening "$kcm_port"
	wait_for kube-scheduler "port $sched_port" "$(left)" listening "$sched_port"
	wait_for kwok "port $kwok_port" "$(left)" listening "$kwok_port"
	unlock_ports

	wait_for kube-controller-manager "controller-manager /healthz" "$(left)" https_ok "$kcm_port"
	wait_for kube-scheduler "scheduler /healthz" "$(left)" https_ok "$sched_port"
	wait_for kwok "kwok /healthz" "$(left)" kwok_healthy
	say "creating the fake GPU nodes"
	k apply -f "$here/nodes.yaml" >/dev/null || fail kube-apiserver "could not create the nodes"
	say "waiting for the default ServiceAccount and Ready nodes"
	wait_for kube-controller-manager "namespace default" "$(left)" k get namespace default
	wait_for kube-controller-manager "ServiceAccount default/default" "$(left)" default_sa
	wait_for kwok "Ready nodes" "$(left)" nodes_ready
	[ "$real_node" = 1 ] && node_main

	up_ok=1
	say "ready in $((SECONDS - t_start)) s: KUBECONFIG=$dir/kubeconfig, server https://$api_host:$api_port"
}

main
