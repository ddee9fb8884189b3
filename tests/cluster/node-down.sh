# Teardown of the real node (node.sh), sourced by down.sh with $dir, $node,
# say and ours. Removes only what DIR/node/net.env recorded, or what lives
# under DIR; every step tolerates a half-made node (a killed up.sh) and
# running it twice.

NODE_X= NODE_NETNS= NODE_LINK= NODE_TABLE= NODE_ROUTE= NODE_CGROUP=
while IFS='=' read -r key value; do
	case "$key" in
	NODE_X | NODE_NETNS | NODE_LINK | NODE_TABLE | NODE_ROUTE | NODE_CGROUP) printf -v "$key" '%s' "$value" ;;
	esac
done <"$node/net.env"

node_sock=$node/containerd/containerd.sock

# node_stop_pods: kill every container task through containerd (while it
# runs), so that the shims exit and nothing of the pods outlives the node.
node_stop_pods() {
	local pid ids id
	pid=$(cat "$dir/pids/containerd.pid" 2>/dev/null) || return 0
	ours containerd "$pid" || return 0
	ids=$(timeout 10 ctr --address "$node_sock" -n k8s.io tasks ls -q 2>/dev/null) || return 0
	# Every container and sandbox id: libcni's cache outside DIR is named by them.
	timeout 10 ctr --address "$node_sock" -n k8s.io containers ls -q >>"$node/container-ids" 2>/dev/null || true
	for id in $ids; do
		timeout 10 ctr --address "$node_sock" -n k8s.io tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
	done
	# A killed task is usually gone by itself (containerd's CRI plugin
	# deletes a task once it exits), and then `tasks rm` answers "not found"
	# for ever: stop when the task is no longer listed, not only when rm
	# succeeds (that waited out the 5 s of retries for every container).
	for id in $ids; do
		for _ in $(seq 1 20); do
			timeout 10 ctr --address "$node_sock" -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 && break
			timeout 10 ctr --address "$node_sock" -n k8s.io tasks ls -q 2>/dev/null | grep -qx "$id" || break
			sleep 0.25
		done
	done
	[ -n "$ids" ] && say "stopped $(echo "$ids" | wc -w) container tasks"
	return 0
}

# node_task_ids: the ids of this node's containers: those recorded while
# containerd ran, and the task folders under DIR it left behind (it was
# stopped before it deleted them: killed from outside, say with the test
# run's process group).
node_task_ids() {
	{
		cat "$node/container-ids" 2>/dev/null
		ls "$node"/containerd/*/io.containerd.runtime.v2.task/k8s.io/ 2>/dev/null
	} | grep -E '^[0-9a-f]{64}$' | sort -u
}

# node_kill_leftovers: processes of the node that outlived containerd: the
# shims (their command line names DIR's socket), anything in the pods'
# cgroup, and anything in a cgroup of one of this node's containers (runc
# puts each in k8s.io/ID of every hierarchy: a container whose shim was
# killed while containerd was gone). SIGKILL, by PID, bounded.
node_kill_leftovers() {
	local p pids=() args id f
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		args=$( (tr '\0' ' ' <"/proc/$p/cmdline") 2>/dev/null) || continue
		case "$args" in *containerd-shim*"$node/"*) pids+=("$p") ;; esac
	done
	if [ -n "$NODE_CGROUP" ]; then
		while IFS= read -r f; do
			while read -r p; do pids+=("$p"); done <"$f"
		done < <(find /sys/fs/cgroup/*/"$NODE_CGROUP" -name cgroup.procs 2>/dev/null)
	fi
	for id in $(node_task_ids); do
		for f in /sys/fs/cgroup/*/k8s.io/"$id"/cgroup.procs; do
			[ -f "$f" ] || continue
			while read -r p; do pids+=("$p"); done <"$f"
		done
	done
	[ ${#pids[@]} -gt 0 ] || return 0
	mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un) # once each (every hierarchy lists them)
	say "killing ${#pids[@]} leftover node processes: ${pids[*]}"
	kill -KILL "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 1 25); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.2
	done
}

# node_unmount: every mount under DIR (kubelet volumes, container root fs,
# sandbox shm, pod netns under containerd's state), deepest first.
node_unmount() {
	local m n=0
	for _ in 1 2 3; do
		local left=0
		while IFS= read -r m; do
			left=1
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
			n=$((n + 1))
		done < <(findmnt -rn -o TARGET | grep "^$dir/" | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
		[ "$left" = 0 ] && break
	done
	[ "$n" -gt 0 ] && say "unmounted $n mounts under $dir"
	return 0
}

node_down() {
	node_kill_leftovers
	node_unmount
	if [ -n "$NODE_CGROUP" ]; then
		local d
		# Children first (depth order), then the root of each hierarchy.
		find /sys/fs/cgroup/*/"$NODE_CGROUP" -depth -type d 2>/dev/null | while read -r d; do
			rmdir "$d" 2>/dev/null || true
		done
	fi
	# This node's containers' cgroups (left when runc could not delete
	# them), then k8s.io itself where empty: another cluster's stay.
	local cid
	for cid in $(node_task_ids); do
		rmdir /sys/fs/cgroup/*/k8s.io/"$cid" 2>/dev/null || true
	done
	rmdir /sys/fs/cgroup/*/k8s.io 2>/dev/null || true
	if [ -n "$NODE_NETNS" ] && [ -e "/var/run/netns/$NODE_NETNS" ]; then
		say "removing network namespace $NODE_NETNS"
		ip netns del "$NODE_NETNS" 2>/dev/null || true
	fi
	if [ -n "$NODE_LINK" ] && ip link show "$NODE_LINK" >/dev/null 2>&1; then
		ip link del "$NODE_LINK" 2>/dev/null || true
	fi
	if [ -n "$NODE_ROUTE" ]; then
		# shellcheck disable=SC2086 # the recorded route is words
		ip route del $NODE_ROUTE 2>/dev/null || true
	fi
	if [ -n "$NODE_TABLE" ] && nft list table inet "$NODE_TABLE" >/dev/null 2>&1; then
		say "removing nftables table inet $NODE_TABLE"
		nft delete table inet "$NODE_TABLE" || true
	fi
	# libcni's result cache (outside DIR, named by our network) and the
	# kubelet's container log links to DIR.
	[ -n "$NODE_X" ] && rm -f /var/lib/cni/results/"kinfer-n$NODE_X"-* 2>/dev/null
	local id
	if [ -f "$node/container-ids" ]; then
		while read -r id; do
			[[ "$id" =~ ^[0-9a-f]{64}$ ]] && rm -f "/var/lib/cni/results/cni-loopback-$id-lo"
		done <"$node/container-ids"
	fi
	local l
	for l in /var/log/containers/*.log; do
		[ -L "$l" ] || continue
		case "$(readlink "$l")" in "$dir/"*) rm -f "$l" ;; esac
	done
	# Folders outside DIR that containerd (shim sockets), libcni (its result
	# cache) and the kubelet (log links) make on first use: removed when
	# empty, so another cluster's are left alone.
	rmdir /run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni \
		/var/log/containers 2>/dev/null || true
	if findmnt -rn -o TARGET | grep -q "^$dir/"; then
		say "WARNING: mounts remain under $dir"
		return 1
	fi
	rm -f "$node/net.env"
	return 0
}
