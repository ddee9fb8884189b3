#!/usr/bin/env bash
# The claims "traffic only to warm pods" and "0 failed requests on scale and
# rollout", through a real kubelet (readiness gate, preStop) and a real
# kube-proxy (nftables), with steady load on each Service's ClusterIP from
# the node's netns. Side by side in the same run: a plain Deployment of the
# same simulator image with a readiness probe. kinfer's failures are
# asserted to be 0; the plain Deployment's are printed as figures.
. "$(dirname "$0")/node_lib.sh"
begin node-traffic
dir=$tmp
at_exit stop_loads
rps=${NODE_RPS:-20}
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null

# step NAME ACTION... : load on both Services while ACTION runs, then
# figures. ACTION is a function that returns once both sides have settled.
figures=()
step() {
	local name=$1 k_out=$dir/$1.kinfer p_out=$dir/$1.plain kp pp
	shift
	load_start "$k_out" "$kip:8000" 300 "$rps"; kp=$started_load
	load_start "$p_out" "$pip:8000" 300 "$rps"; pp=$started_load
	sleep 2
	"$@"
	local rc=$?
	sleep 2
	kill -TERM "$kp" "$pp" 2>/dev/null
	load_wait "$kp"; load_wait "$pp"
	lg_pids=()
	local kf pf ks ps
	kf=$(summary_of "$k_out" failed) ks=$(summary_of "$k_out" sent)
	pf=$(summary_of "$p_out" failed) ps=$(summary_of "$p_out" sent)
	expect_code 0 "$rc" "$name: done on both sides"
	expect_match "${ks:-0}" '^[1-9][0-9]*$' "$name: kinfer's Service got load ($ks requests)"
	expect_match "${kf:-x}" '^0$' "$name: 0 failed requests through kinfer's Service (of ${ks:-?})"
	figures+=("$name: kinfer ${kf:-?} failed of ${ks:-?}, plain Deployment ${pf:-?} failed of ${ps:-?}")
}

# --- apply -> warm-up -> Ready ---------------------------------------------
# Load runs from before the first pod exists: requests that find no
# endpoint fail at kube-proxy (not counted); the simulator counts any
# request that reaches a pod before its first warm-up request.
plain "$ns" plain 1
kis "$ns" llm 1 r1 8
wait_until 30 kc -n "$ns" get svc llm -o name >/dev/null 2>&1
kip=$(cluster_ip "$ns" llm) pip=$(cluster_ip "$ns" plain)
expect_match "$kip $pip" '^198\.19\.[0-9.]+ 198\.19\.[0-9.]+$' "both Services have ClusterIPs of 198.19.0.0/16 ($kip, $pip)"
load_start "$dir/warm.kinfer" "$kip:8000" 60 "$rps"; kp=$started_load
load_start "$dir/warm.plain" "$pip:8000" 60 "$rps"; pp=$started_load
kc -n "$ns" wait --for=condition=Ready kis/llm --timeout=120s >/dev/null
expect_code 0 $? "the InferenceService becomes Ready (warm) on kinfer-node-0"
wait_until 60 pods_ready "$ns" app=plain 1
sleep 3
kill -TERM "$kp" "$pp" 2>/dev/null; load_wait "$kp"; load_wait "$pp"; lg_pids=()
kpod_ip=$(kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{.items[0].status.podIP}')
ppod_ip=$(kc -n "$ns" get pods -l app=plain -o jsonpath='{.items[0].status.podIP}')
node=$(kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{.items[0].spec.nodeName}')
expect_match "$node" '^kinfer-node-0$' "kinfer placed the pod on the real node"
kb=$(sim_metric "$kpod_ip" kinfer_sim_traffic_before_warm_total)
kw=$(sim_metric "$kpod_ip" kinfer_sim_warmup_requests_total)
pb=$(sim_metric "$ppod_ip" kinfer_sim_traffic_before_warm_total)
expect_match "${kw:-x}" '^[3-9]$|^[1-9][0-9]+$' "kinfer's pod got its warm-up requests ($kw)"
expect_match "${kb:-x}" '^0$' "no request reached kinfer's pod before its warm-up (simulator's count)"
ok=$(summary_of "$dir/warm.kinfer" ok)
expect_match "${ok:-0}" '^[1-9][0-9]*$' "load reached kinfer's pod through the ClusterIP once warm ($ok ok)"
figures+=("apply -> Ready: requests before warm-up: kinfer ${kb:-?}, plain Deployment ${pb:-?}")

# --- scale 1 -> 3, 3 -> 1, rolling update, rolling update + scale-down -----
settled() { # NS: 1 kinfer and plain both at N ready pods and no others
	pods_total "$ns" kinfer.io/service=llm "$1" && pods_ready "$ns" kinfer.io/service=llm "$1" &&
		pods_total "$ns" app=plain "$1" && pods_ready "$ns" app=plain "$1"
}
revised() { # REV N: every pod of both has revision REV
	[ "$(kc -n "$ns" get pods -l kinfer.io/service=llm -o jsonpath='{range .items[*]}{.metadata.annotations.kinfer\.io/model-revision}{"\n"}{end}' | grep -c "^$1$")" = "$2" ] &&
		[ "$(kc -n "$ns" get pods -l app=plain -o jsonpath='{range .items[*]}{.spec.containers[0].env[2].value}{"\n"}{end}' | grep -c "^$1$")" = "$2" ] &&
		settled "$2"
}
scale_to() {
	kc -n "$ns" scale kis/llm --replicas="$1" >/dev/null &&
		kc -n "$ns" scale deploy/plain --replicas="$1" >/dev/null &&
		wait_until 150 settled "$1"
}
roll() { # REV [N]: new revision (and replicas N) at once
	kis "$ns" llm "${2:-1}" "$1" 8 && plain "$ns" plain "${2:-1}" "$1" &&
		wait_until 180 revised "$1" "${2:-1}"
}
step "scale 1->3" scale_to 3
step "scale 3->1" scale_to 1
step "rolling update" roll r2 1
scale_to 3 >/dev/null
step "rolling update + scale 3->1" roll r3 1

for f in "${figures[@]}"; do echo "figure: $f"; done
summary
