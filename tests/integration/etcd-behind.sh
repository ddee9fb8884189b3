#!/usr/bin/env bash
# Kill kube-apiserver, delete ConfigMaps straight from etcd and compact
# etcd to its newest revision while the server is down, then start it
# again: every resourceVersion a client held is now gone (410 on watch).
#   etcd-behind.sh CLUSTER_DIR NAMESPACE NAME...
set -euo pipefail
dir=$1 ns=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
set -a; . "$dir/env"; set +a
etcd=http://127.0.0.1:$KINFER_ETCD_PORT
b64() { printf '%s' "$1" | base64 -w0; }
cmds=""
for n in "$@"; do
	cmds+="curl -sf -X POST $etcd/v3/kv/deleterange -d '{\"key\":\"$(b64 "/registry/configmaps/$ns/$n")\"}' >/dev/null; "
done
cmds+="rev=\$(curl -sf -X POST $etcd/v3/kv/range -d '{\"key\":\"$(b64 /)\"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"header\"][\"revision\"])'); "
cmds+="curl -sf -X POST $etcd/v3/kv/compaction -d \"{\\\"revision\\\": \$rev, \\\"physical\\\": true}\" >/dev/null"
bash "$here/../cluster/restart.sh" "$dir" kube-apiserver --kill --down-for 1 --before-start "$cmds"
