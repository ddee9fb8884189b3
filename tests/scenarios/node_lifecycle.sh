#!/usr/bin/env bash
# What only a real kubelet does, seen from inside the model server:
#   - the preStop hook kinfer puts in the pod template is really run, and
#     terminationGracePeriodSeconds honoured: SIGTERM reaches the simulator
#     no sooner than the hook's pause after the delete, and it exits by
#     itself (code 0) before the grace period ends;
#   - a container restart (the simulator's process killed from the host):
#     the pod leaves the Service, is warmed again by kinfer, and returns;
#     no request reaches the new process before its warm-up.
#   - the kubelet restarted (5 s down): the containers go on running, the
#     kubelet reports them not ready until its startup probes pass again,
#     and kinfer keeps them warm (no second warm-up, no ContainerRestarted).
# Steady load on the ClusterIP throughout.
. "$(dirname "$0")/node_lib.sh"
begin node-life
dir=$tmp
at_exit stop_loads
install_kinfer; expect_code 0 $? "kinfer is installed from its image"
kc create namespace "$ns" >/dev/null
kis "$ns" life 2 r1 6
kc -n "$ns" wait --for=condition=Ready kis/life --timeout=120s >/dev/null
expect_code 0 $? "the InferenceService is Ready with 2 warm pods"
wait_until 60 pods_ready "$ns" kinfer.io/service=life 2
kip=$(cluster_ip "$ns" life)
load_start "$dir/load" "$kip:8000" 300 20; lp=$started_load

# --- preStop and the grace period --------------------------------------------
pod=$(kc -n "$ns" get pods -l kinfer.io/service=life -o jsonpath='{.items[0].metadata.name}')
pre=$(kc -n "$ns" get pod "$pod" -o jsonpath='{.spec.containers[0].lifecycle.preStop.sleep.seconds}')
grace=$(kc -n "$ns" get pod "$pod" -o jsonpath='{.spec.terminationGracePeriodSeconds}')
expect_match "$pre $grace" '^[1-9][0-9]* [1-9][0-9]*$' "kinfer's template: preStop pause $pre s, grace period $grace s"
kc_bg -n "$ns" logs -f --timestamps "$pod" >"$dir/pod.log" 2>&1 &
logs_pid=$!; track_pid "$logs_pid"
sleep 1
t_delete=$(date +%s.%N)
kc -n "$ns" delete pod "$pod" --wait=false >/dev/null
wait_until $((grace + 20)) grep -q 'msg="exiting"' "$dir/pod.log"
expect_code 0 $? "the simulator exits by itself after SIGTERM"
stop_pid "$logs_pid"
cp "$dir/pod.log" "${KINFER_TEST_CLUSTER}/logs/node-lifecycle-pod.log" 2>/dev/null
t_term=$(grep 'msg="SIGTERM received"' "$dir/pod.log" | head -1 | cut -d' ' -f1)
t_exit=$(grep 'msg="exiting"' "$dir/pod.log" | head -1 | cut -d' ' -f1)
after=$(python3 -c 'import sys,datetime as d
f=lambda s: d.datetime.fromisoformat(s.rstrip("Z")[:26]).replace(tzinfo=d.timezone.utc).timestamp()
print("%.1f %.1f" % (f(sys.argv[2]) - float(sys.argv[1]), f(sys.argv[3]) - float(sys.argv[1])))' \
	"$t_delete" "$t_term" "$t_exit" 2>&1)
term_s=${after% *} exit_s=${after#* }
figure_pre="delete -> SIGTERM ${term_s} s (preStop pause $pre s), delete -> exit ${exit_s} s (grace $grace s)"
expect_match "$(awk -v t="$term_s" -v p="$pre" 'BEGIN { print (t >= p - 0.5 && t < p + 10) ? "yes" : "no" }')" '^yes$' \
	"SIGTERM comes after the preStop pause: $figure_pre"
expect_match "$(awk -v t="$exit_s" -v g="$grace" 'BEGIN { print (t < g) ? "yes" : "no" }')" '^yes$' \
	"the simulator exited before the grace period ended (not killed)"
wait_until 90 pods_ready "$ns" kinfer.io/service=life 2
expect_code 0 $? "the ReplicaSet's replacement pod is warm and Ready"

# --- a container restart -------------------------------------------------------
pod=$(kc -n "$ns" get pods -l kinfer.io/service=life -o jsonpath='{.items[0].metadata.name}')
ip=$(kc -n "$ns" get pod "$pod" -o jsonpath='{.status.podIP}')
cid=$(kc -n "$ns" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].containerID}')
cid=${cid#containerd://}
pid=$(ctr --address "$KINFER_CONTAINERD_SOCK" -n k8s.io tasks ls 2>/dev/null | awk -v c="$cid" '$1 == c { print $2 }')
expect_match "${pid:-none}" '^[0-9]+$' "the simulator's process of $pod is found through containerd (pid $pid)"
warm_before=$(sim_metric "$ip" kinfer_sim_warmup_requests_total)
in_service() { # IP: listed ready in the Service's EndpointSlices
	kc -n "$ns" get endpointslices -l kubernetes.io/service-name=life \
		-o jsonpath='{range .items[*].endpoints[*]}{.addresses[0]} {.conditions.ready}{"\n"}{end}' | grep -q "^$1 true$"
}
out_of_service() { ! in_service "$1"; }
[ -n "$pid" ] && kill -KILL "$pid"
wait_until 30 out_of_service "$ip"
expect_code 0 $? "the killed pod leaves the Service"
restarted() {
	[ "$(kc -n "$ns" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')" -ge 1 ] 2>/dev/null
}
wait_until 60 restarted; expect_code 0 $? "the kubelet restarts the container"
wait_until 90 in_service "$ip"
expect_code 0 $? "the pod returns to the Service"
warm_after=$(sim_metric "$ip" kinfer_sim_warmup_requests_total)
before_warm=$(sim_metric "$ip" kinfer_sim_traffic_before_warm_total)
expect_match "${warm_after:-x}" '^[1-9][0-9]*$' "the restarted model server was warmed again ($warm_after warm-up requests; the killed one had $warm_before)"
expect_match "${before_warm:-x}" '^0$' "no request reached the restarted model server before its warm-up"
out=$(kc -n "$ns" get events --field-selector "involvedObject.name=$pod,reason=ContainerRestarted" -o name 2>&1)
expect_match "$out" 'event' "kinfer says why the pod left the Service (event ContainerRestarted)"

kill -TERM "$lp" 2>/dev/null; load_wait "$lp"; lg_pids=()
lfailed=$(summary_of "$dir/load" failed) lsent=$(summary_of "$dir/load" sent)

# --- the kubelet restarts --------------------------------------------------------
# An upgrade of the node's agent: the kubelet stops for 5 s and starts again;
# the containers go on running. The restarted kubelet has forgotten its
# startup probes' results, so it reports every container not ready until
# they pass again (a second or two). The model servers never stopped: kinfer
# must not warm them again (the code before this did, both pods at once,
# keeping them out of the Service for the whole warm-up).
wait_until 90 pods_ready "$ns" kinfer.io/service=life 2
pods=$(kc -n "$ns" get pods -l kinfer.io/service=life -o jsonpath='{.items[*].metadata.name}')
# state POD: restartCount, the gate's status and lastTransitionTime, and the
# model server's count of warm-up requests.
state() {
	local ip
	ip=$(kc -n "$ns" get pod "$1" -o jsonpath='{.status.podIP}')
	echo "$(kc -n "$ns" get pod "$1" -o jsonpath='restarts={.status.containerStatuses[0].restartCount} gate={.status.conditions[?(@.type=="kinfer.io/warmed-up")].status}@{.status.conditions[?(@.type=="kinfer.io/warmed-up")].lastTransitionTime}') warmups=$(sim_metric "$ip" kinfer_sim_warmup_requests_total)"
}
declare -A before=()
for p in $pods; do before[$p]=$(state "$p"); done
kc_bg -n "$ns" get pods -l kinfer.io/service=life -w --output-watch-events \
	-o jsonpath='{.type} {.object.metadata.name} {.object.status.conditions[?(@.type=="Ready")].status}{"\n"}' >"$dir/kubelet-watch" 2>&1 &
watch_pid=$!; track_pid "$watch_pid"
load_start "$dir/kload" "$kip:8000" 60 20; klp=$started_load
sleep 2
t_iso=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bash "$src/tests/cluster/restart.sh" "$KINFER_TEST_CLUSTER" kubelet --down-for 5 >"$dir/restart.log" 2>&1
expect_code 0 $? "the kubelet stops and starts again (down 5 s)"
node_ready() { [ "$(kc get node kinfer-node-0 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
wait_until 60 node_ready; expect_code 0 $? "kinfer-node-0 is Ready again"
# The kubelet's first status after its restart comes once it has synced:
# wait until a pod was seen not Ready (its forgotten startup probe), or 20 s.
flapped() { grep -q ' False$' "$dir/kubelet-watch"; }
wait_until 20 flapped
wait_until 60 pods_ready "$ns" kinfer.io/service=life 2
expect_code 0 $? "both pods Ready again"
sleep 3
stop_pid "$watch_pid"
for p in $pods; do
	after=$(state "$p")
	expect_match "$after" "^${before[$p]}\$" "$p: the same process, still warm, not warmed again (before: ${before[$p]})"
done
# Events since the restart (the container kill above made one before).
out=$(kc -n "$ns" get events --field-selector reason=ContainerRestarted \
	-o jsonpath='{range .items[*]}{.eventTime}{.lastTimestamp} {.involvedObject.name} {.message}{"\n"}{end}' |
	awk -v t="$t_iso" '$1 >= t')
expect_match "$out" '^$' "no ContainerRestarted Event since the kubelet's restart"
kc -n "$ns" wait --for=condition=Ready kis/life --timeout=30s >/dev/null
expect_code 0 $? "the InferenceService is Ready"
kill -TERM "$klp" 2>/dev/null; load_wait "$klp"; lg_pids=()
kfailed=$(summary_of "$dir/kload" failed) ksent=$(summary_of "$dir/kload" sent)
notready=$(grep -c ' False$' "$dir/kubelet-watch")

echo "figure: $figure_pre"
echo "figure: load through the ClusterIP during delete and container kill: ${lfailed:-?} failed of ${lsent:-?} (the kill cuts the requests in flight)"
echo "figure: kubelet restart (down 5 s): ${kfailed:-?} failed of ${ksent:-?} through the ClusterIP (kept connections); pod updates with Ready False: $notready"
summary
