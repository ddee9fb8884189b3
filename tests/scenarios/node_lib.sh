# Helpers of the real-node scenarios (node_*.sh), on top of lib.sh:
# the fixture cluster_node runs `up.sh --real-node`, so kinfer-node-0 runs
# containers and kube-proxy serves ClusterIPs inside the node's netns.
. "$(dirname "$0")/lib.sh"

set -a
. "$KINFER_TEST_CLUSTER/env"
set +a
[ "${KINFER_REAL_NODE:-0}" = 1 ] || { echo "the cluster at $KINFER_TEST_CLUSTER has no real node"; exit 1; }
src=$KINFER_SOURCE_DIR
. "$KINFER_IMAGE_DIR/images.env"

# in_node CMD...: CMD in the node's network namespace (where ClusterIPs work).
in_node() { nsenter --net="/var/run/netns/$KINFER_NODE_NETNS" "$@"; }

# install_kinfer: the admin install (idempotent), both replicas Available
# and the admission webhook answering through its Service. A pod's
# readiness reaches kube-proxy through the EndpointSlice a moment after the
# rollout is done; until then the API server's call to the webhook is
# refused ("connection refused", failurePolicy Fail) and so is every
# create. A server-side dry run goes through the webhooks and writes
# nothing: wait (bounded) for one to pass, as README's install says.
install_kinfer() {
	kc apply -k "$src/manifests/" >/dev/null &&
		kc wait --for=condition=Established crd/inferenceservices.kinfer.io --timeout=60s >/dev/null &&
		kc -n kinfer-system rollout status deploy/kinfer-operator --timeout=120s >/dev/null || return 1
	wait_until 60 kc -n default apply --dry-run=server -o name \
		-f "$src/tests/data/webhook/good/vllm-minimal.yaml" >/dev/null 2>&1 && return 0
	echo "the webhook does not answer through its Service after 60 s:" >&2
	kc -n default apply --dry-run=server -o name -f "$src/tests/data/webhook/good/vllm-minimal.yaml" >&2
	kc -n kinfer-system get pods,endpointslices -o wide >&2
	return 1
}

# lease: who holds kinfer's leader Lease ("POD_RANDOM": the pod is
# ${h%_*}). new_leader OLD: someone other than OLD holds it.
lease() { kc -n kinfer-system get lease kinfer-operator -o jsonpath='{.spec.holderIdentity}'; }
new_leader() { local h; h=$(lease); [ -n "$h" ] && [ "$h" != "$1" ]; }
# replace_leader WHEN: the leader operator pod deleted (graceful: its Lease
# is released, the other replica takes it), then another holder within 60 s;
# a check for each ("deleted WHEN"; the time from $t0).
replace_leader() {
	local old
	old=$(lease)
	kc -n kinfer-system delete pod "${old%_*}" --wait=false >/dev/null 2>&1
	expect_code 0 $? "the leader ${old%_*} is deleted $1"
	wait_until 60 new_leader "$old"
	expect_code 0 $? "another replica takes the Lease ($(lease)) at +$((SECONDS - t0)) s"
}

# sim_metric POD_IP NAME: a counter of the simulator in that pod (its
# series summed when it has labels, as vllm:request_success_total); empty
# when the page has no such series or the pod does not answer.
sim_metric() {
	in_node curl -s --max-time 3 "http://$1:8000/metrics" |
		awk -v n="$2" 'index($1, n) == 1 && (length($1) == length(n) || substr($1, length(n) + 1, 1) == "{") { s += $2; f = 1 } END { if (f) print s }'
}

# kis NS NAME REPLICAS [REVISION] [DRAIN_S] [LATENCY_MS]: an InferenceService
# of the simulator image on kinfer-node-0, 1 GPU a pod (KIS_GPUS to change;
# KIS_TOKEN_MS: a streamed answer's tokens that many ms apart, default 0).
kis() {
	cat <<YAML | kc -n "$1" apply -f - >/dev/null
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: $2}
spec:
  model: {name: $2, uri: "file:///models/$2", framework: vllm, revision: "${4:-r1}"}
  image: ${SIM_IMAGE#docker.io/}
  env:
    - {name: SIM_LOAD_SECONDS, value: "2"}
    - {name: SIM_LATENCY_MS, value: "${6:-50}"}
    - {name: SIM_CAPACITY, value: "64"}
    - {name: MODEL_REVISION, value: "${4:-r1}"}
    - {name: SIM_TOKEN_MS, value: "${KIS_TOKEN_MS:-0}"}
  port: 8000
  replicas: $3
  resources:
    gpu: {count: ${KIS_GPUS:-1}}
    cpu: 10m
    memory: 32Mi
  warmup: {path: /v1/completions, body: {model: $2, prompt: hi, max_tokens: 4}, requests: 3, timeoutSeconds: 120}
  drain: {timeoutSeconds: ${5:-20}}
  scheduling: {nodeSelector: {kinfer.io/real-node: "true"}}
YAML
}

# kis_s2z NS NAME LOAD_S MAX_PENDING TIMEOUT_S [TOKEN_MS]: an
# InferenceService of the simulator image (model load LOAD_S; a streamed
# answer's tokens TOKEN_MS apart, default 0) on kinfer-node-0 that scales
# to zero after 10 s idle (maxPendingRequests, activationTimeoutSeconds);
# it starts with one replica.
kis_s2z() {
	cat <<YAML | kc -n "$1" apply -f - >/dev/null
apiVersion: kinfer.io/v1alpha1
kind: InferenceService
metadata: {name: $2}
spec:
  model: {name: $2, uri: "file:///models/$2", framework: vllm}
  image: ${SIM_IMAGE#docker.io/}
  env:
    - {name: SIM_LOAD_SECONDS, value: "$3"}
    - {name: SIM_LATENCY_MS, value: "50"}
    - {name: SIM_CAPACITY, value: "256"}
    - {name: SIM_TOKEN_MS, value: "${6:-0}"}
  port: 8000
  resources:
    gpu: {count: 1}
    cpu: 10m
    memory: 32Mi
  scaling:
    minReplicas: 0
    maxReplicas: 1
    metrics: [{type: QueueDepth, target: 100}]
    scaleToZero: {idleSeconds: 10, maxPendingRequests: $4, activationTimeoutSeconds: $5}
  warmup: {path: /v1/completions, body: {model: $2, prompt: hi, max_tokens: 4}, requests: 3, timeoutSeconds: 120, requestTimeoutSeconds: 10}
  drain: {timeoutSeconds: 10}
  scheduling: {nodeSelector: {kinfer.io/real-node: "true"}}
YAML
}

# plain NS NAME REPLICAS [REVISION]: the same image as a plain Deployment
# with a readiness probe, and its Service.
plain() {
	cat <<YAML | kc -n "$1" apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: $2}
spec:
  replicas: $3
  selector: {matchLabels: {app: $2}}
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  template:
    metadata: {labels: {app: $2}}
    spec:
      nodeSelector: {kinfer.io/real-node: "true"}
      terminationGracePeriodSeconds: 30
      containers:
        - name: model
          image: ${SIM_IMAGE#docker.io/}
          imagePullPolicy: IfNotPresent
          args: [--port, "8000"]
          env:
            - {name: SIM_LOAD_SECONDS, value: "2"}
            - {name: SIM_CAPACITY, value: "64"}
            - {name: MODEL_REVISION, value: "${4:-r1}"}
          ports: [{name: http, containerPort: 8000}]
          readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
          resources: {requests: {cpu: 10m, memory: 32Mi}}
---
apiVersion: v1
kind: Service
metadata: {name: $2}
spec:
  selector: {app: $2}
  ports: [{name: http, port: 8000, targetPort: http}]
YAML
}

# cluster_ip NS SVC
cluster_ip() { kc -n "$1" get svc "$2" -o jsonpath='{.spec.clusterIP}'; }
# routed IP PORT: a TCP connection there from the node is accepted. A
# Service's EndpointSlice reaches kube-proxy's rules a moment after the API
# server has it (a second or more on a busy machine): load that starts
# before then is refused, which says nothing of kinfer. Wait for this
# (bounded) first.
routed() { in_node timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

# Load generators in the node's netns, stopped by PID on every exit path.
lg_pids=()
stop_loads() {
	local p
	for p in "${lg_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${lg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
	lg_pids=()
}
# load_start OUT IP:PORT SECONDS [RPS] [HOST]: steady load in the background
# (its connections kept, as HTTP clients do; HOST: the Host header, as a
# client using the Service's DNS name sends); OUT gets the summary,
# OUT.jsonl a line per request (load_failures).
load_start() {
	# nsenter execs the load generator: $! is its PID.
	nsenter --net="/var/run/netns/$KINFER_NODE_NETNS" "$KINFER_LOADGEN" --service "$2" \
		${5:+--host "$5"} --rps "${4:-20}" --duration "$3s" --timeout 10s --out "$1.jsonl" \
		>"$1" 2>"$1.log" &
	lg_pids+=("$!")
	started_load=$!
}
# load_wait PID: the run's summary is complete.
load_wait() { wait "$1" 2>/dev/null || true; }
# load_failures OUT: the failed requests of a run (at most 10 lines: when
# sent, ms after the load began, to which pod, what went wrong), for a
# failing check's message.
load_failures() { grep -v '"error":null' "$1.jsonl" 2>/dev/null | head -10 | tr '\n' ' '; }
# summary_of OUT KEY
summary_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# pods_ready NS SELECTOR N: N pods Ready.
pods_ready() {
	[ "$(kc -n "$1" get pods -l "$2" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
		grep -c '^ True$')" = "$3" ]
}
# pods_total NS SELECTOR N: exactly N pods exist (terminating ones included).
pods_total() { [ "$(kc -n "$1" get pods -l "$2" --no-headers 2>/dev/null | wc -l)" = "$3" ]; }
