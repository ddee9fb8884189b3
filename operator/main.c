/*
 * kinfer-operator: one binary, several subcommands, each a row of the
 * subcommands table at the end of this file:
 *
 *   kinfer-operator [run] [flags]   run the operator (the default)
 *   kinfer-operator activator ...   hold and forward requests of services at zero
 *   kinfer-operator simulate ...    the autoscaler offline, on a trace
 *   kinfer-operator validate -f F   the webhook's rules, offline
 *   kinfer-operator version         print the version
 *   kinfer-operator help            list subcommands and flags
 *
 * main only wires modules together. run: flags -> logging -> kinfer.io's
 * projected keys -> API client -> admission webhook -> the manager with
 * the controller table of reconcilers/ (informers and caches, work queues,
 * leader election, the health and metrics server). Every flag of run is a
 * row of the table below and can also come from the environment variable
 * it names.
 */
#include "activator.h"
#include "cache.h"
#include "context.h"
#include "controllers.h"
#include "events.h"
#include "flags.h"
#include "httpserver.h"
#include "kube.h"
#include "ktime.h"
#include "kubeconfig.h"
#include "log.h"
#include "manager.h"
#include "metrics.h"
#include "placement_controller.h"
#include "metricscmd.h"
#include "metricsource.h"
#include "simulate.h"
#include "snapshot.h"
#include "selfsigned.h"
#include "validate.h"
#include "webhook.h"
#include "keys.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef KINFER_VERSION
#define KINFER_VERSION "0.0.0-dev"
#endif

/* At a stop, how long the low-priority Events still queued may take. */
#define EVENTS_FLUSH_NS (5 * KTIME_NSEC_PER_SEC)

struct config {
	const char *kubeconfig;
	const char *context;
	const char *log_level;
	const char *log_format;
	double kube_api_qps;
	int kube_api_burst;
	long kube_api_timeout_ms;
	int kube_api_retries;
	const char *http_addr;
	const char *watch_namespace;
	long resync_ms;
	long shutdown_timeout_ms;
	bool leader_elect;
	const char *leader_election_namespace;
	const char *leader_election_id;
	long lease_duration_ms;
	long renew_deadline_ms;
	long retry_period_ms;
	const char *shared_gpu_resource;
	long autoscale_scrape_timeout_ms;
	const char *prometheus_allowed_urls;
	bool allow_custom_promql;
	const char *webhook_addr;
	const char *webhook_cert_file;
	const char *webhook_key_file;
	bool webhook_self_signed;
	const char *webhook_secret;
	const char *webhook_cert_hosts;
	const char *webhook_configuration;
	long webhook_shutdown_delay_ms;
	bool placement;
	bool placement_index;
	bool placement_index_check;
	const char *scheduler_name;
	const char *activator_namespace;
	int activator_port;
	int weight_cached, weight_utilization, weight_packing, weight_fragmentation;
};

#define F(name, env, kind, field, def, help) \
	{ \
		name, env, kind, offsetof(struct config, field), def, help \
	}

static const struct flag run_flags[] = {
	F("kubeconfig", "KUBECONFIG", FLAG_STRING, kubeconfig, NULL,
	  "kubeconfig file (or ':'-separated list); without it: in-cluster, then ~/.kube/config"),
	F("context", "KINFER_CONTEXT", FLAG_STRING, context, NULL,
	  "kubeconfig context to use instead of current-context"),
	F("log-level", "KINFER_LOG_LEVEL", FLAG_STRING, log_level, "info",
	  "debug, info, warn or error"),
	F("log-format", "KINFER_LOG_FORMAT", FLAG_STRING, log_format, "logfmt",
	  "logfmt or json; one event per line on stderr"),
	F("kube-api-qps", "KINFER_KUBE_API_QPS", FLAG_DOUBLE, kube_api_qps, "20",
	  "client-side rate limit for API requests per second"),
	F("kube-api-burst", "KINFER_KUBE_API_BURST", FLAG_INT, kube_api_burst, "40",
	  "API requests allowed at once above the rate"),
	F("kube-api-timeout", "KINFER_KUBE_API_TIMEOUT", FLAG_DURATION_MS, kube_api_timeout_ms,
	  "30s", "timeout of one API request"),
	F("kube-api-retries", "KINFER_KUBE_API_RETRIES", FLAG_INT, kube_api_retries, "5",
	  "retries of a failed API request that is safe to retry"),
	F("http-addr", "KINFER_HTTP_ADDR", FLAG_STRING, http_addr, ":8080",
	  "host:port for /healthz, /readyz and /metrics (port 0: any free port)"),
	F("watch-namespace", "KINFER_WATCH_NAMESPACE", FLAG_STRING, watch_namespace, NULL,
	  "watch only this namespace (default: all namespaces)"),
	F("resync-period", "KINFER_RESYNC_PERIOD", FLAG_DURATION_MS, resync_ms, "10m",
	  "re-reconcile every cached object this often (no API calls; 0: never)"),
	F("shutdown-timeout", "KINFER_SHUTDOWN_TIMEOUT", FLAG_DURATION_MS, shutdown_timeout_ms,
	  "30s", "how long in-flight reconciles may finish on SIGTERM"),
	F("leader-elect", "KINFER_LEADER_ELECT", FLAG_BOOL, leader_elect, "true",
	  "elect a leader through a Lease; only the leader reconciles"),
	F("leader-election-namespace", "KINFER_LEADER_ELECTION_NAMESPACE", FLAG_STRING,
	  leader_election_namespace, NULL,
	  "namespace of the Lease (default: the pod's, or the kubeconfig context's)"),
	F("leader-election-id", "KINFER_LEADER_ELECTION_ID", FLAG_STRING, leader_election_id,
	  "kinfer-operator", "name of the Lease"),
	F("lease-duration", "KINFER_LEASE_DURATION", FLAG_DURATION_MS, lease_duration_ms, "15s",
	  "how long a standby waits after the last renewal before taking over"),
	F("renew-deadline", "KINFER_RENEW_DEADLINE", FLAG_DURATION_MS, renew_deadline_ms, "10s",
	  "how long the leader keeps trying to renew before giving up"),
	F("retry-period", "KINFER_RETRY_PERIOD", FLAG_DURATION_MS, retry_period_ms, "2s",
	  "how often candidates try and the leader renews"),
	F("shared-gpu-resource", "KINFER_SHARED_GPU_RESOURCE", FLAG_STRING, shared_gpu_resource,
	  "nvidia.com/gpu.shared",
	  "resource the NVIDIA device plugin advertises for time-slicing and MPS"),
	F("autoscale-scrape-timeout", "KINFER_AUTOSCALE_SCRAPE_TIMEOUT", FLAG_DURATION_MS,
	  autoscale_scrape_timeout_ms, "2s",
	  "timeout of one pod metrics scrape by the autoscaler (Prometheus: its timeoutSeconds)"),
	F("prometheus-allowed-urls", "KINFER_PROMETHEUS_ALLOWED_URLS", FLAG_STRING,
	  prometheus_allowed_urls, "",
	  "comma-separated Prometheus base URLs that metricsSource Prometheus may name; the webhook "
	  "refuses others and the autoscaler never queries them (empty: none)"),
	F("allow-custom-promql", "KINFER_ALLOW_CUSTOM_PROMQL", FLAG_BOOL, allow_custom_promql,
	  "false", "allow metrics of type Custom (a user's PromQL can read any namespace's series)"),
	F("webhook-addr", "KINFER_WEBHOOK_ADDR", FLAG_STRING, webhook_addr, "",
	  "host:port of the admission webhook's HTTPS server, every replica (empty: off)"),
	F("webhook-cert-file", "KINFER_WEBHOOK_CERT_FILE", FLAG_STRING, webhook_cert_file,
	  "/etc/kinfer/webhook/tls.crt",
	  "the webhook's PEM certificate (chain); reloaded when it changes"),
	F("webhook-key-file", "KINFER_WEBHOOK_KEY_FILE", FLAG_STRING, webhook_key_file,
	  "/etc/kinfer/webhook/tls.key", "the webhook's PEM private key; reloaded when it changes"),
	F("webhook-self-signed", "KINFER_WEBHOOK_SELF_SIGNED", FLAG_BOOL, webhook_self_signed, "false",
	  "make kinfer's own CA and serving certificate (in --webhook-secret) instead of the files, "
	  "and set the caBundle of --webhook-configuration"),
	F("webhook-secret", "KINFER_WEBHOOK_SECRET", FLAG_STRING, webhook_secret,
	  "kinfer-system/kinfer-webhook-tls",
	  "namespace/name of the Secret for --webhook-self-signed"),
	F("webhook-cert-hosts", "KINFER_WEBHOOK_CERT_HOSTS", FLAG_STRING, webhook_cert_hosts,
	  "kinfer-operator.kinfer-system.svc,kinfer-operator.kinfer-system.svc.cluster.local",
	  "DNS names and IPs, comma-separated, of the --webhook-self-signed certificate"),
	F("webhook-configuration", "KINFER_WEBHOOK_CONFIGURATION", FLAG_STRING,
	  webhook_configuration, "kinfer-operator",
	  "name of the Mutating- and ValidatingWebhookConfiguration whose "
	  "caBundle --webhook-self-signed sets"),
	F("webhook-shutdown-delay", "KINFER_WEBHOOK_SHUTDOWN_DELAY", FLAG_DURATION_MS,
	  webhook_shutdown_delay_ms, "5s",
	  "after SIGTERM, how long the webhook keeps serving while the Service's endpoints drop "
	  "this pod (a second signal ends it)"),
	F("placement", "KINFER_PLACEMENT", FLAG_BOOL, placement, "true",
	  "kinfer places its pods itself (false: kube-scheduler, with the same node selection)"),
	F("scheduler-name", "KINFER_SCHEDULER_NAME", FLAG_STRING, scheduler_name, "kinfer",
	  "schedulerName kinfer writes in its pods and schedules"),
	F("activator-namespace", "KINFER_ACTIVATOR_NAMESPACE", FLAG_STRING, activator_namespace, NULL,
	  "namespace of the activator's pods (label app.kubernetes.io/component=activator) that "
	  "scale-to-zero Services route to at zero (default: the operator's own)"),
	F("activator-port", "KINFER_ACTIVATOR_PROXY_PORT", FLAG_INT, activator_port, "8012",
	  "the activator's proxy port (its --listen)"),
	F("placement-index", "KINFER_PLACEMENT_INDEX", FLAG_BOOL, placement_index, "true",
	  "decide placements from the per-node free-capacity index (false: a scan of every node "
	  "for each decision, the same choices, slower at thousands of nodes)"),
	F("placement-index-check", "KINFER_PLACEMENT_INDEX_CHECK", FLAG_BOOL, placement_index_check,
	  "false",
	  "with the index, also scan every node for each decision, bind the scan's choice and log "
	  "a warning (and count kinfer_placement_index_mismatches_total) when the two differ on "
	  "the same state (for tests: costs a scan per decision)"),
	F("placement-weight-cached", "KINFER_PLACEMENT_WEIGHT_CACHED", FLAG_INT, weight_cached,
	  "40", "score weight (0-1000) of a node that caches the pod's model"),
	F("placement-weight-utilization", "KINFER_PLACEMENT_WEIGHT_UTILIZATION", FLAG_INT,
	  weight_utilization, "10", "score weight (0-1000) of a node's idle GPUs"),
	F("placement-weight-packing", "KINFER_PLACEMENT_WEIGHT_PACKING", FLAG_INT, weight_packing,
	  "20", "score weight (0-1000) of packing (low, normal) or spreading (high priority)"),
	F("placement-weight-fragmentation", "KINFER_PLACEMENT_WEIGHT_FRAGMENTATION", FLAG_INT,
	  weight_fragmentation, "10", "score weight (0-1000) of leaving fewer GPUs stranded"),
};

#define N_RUN_FLAGS (sizeof(run_flags) / sizeof(run_flags[0]))

static void usage(FILE *out);

static int setup_logging(const struct config *cfg)
{
	return log_setup_flags("kinfer-operator", cfg->log_level, cfg->log_format);
}

static const char *const api_labels[] = { "verb", "code", NULL };
static const char *const api_verb_labels[] = { "verb", NULL };
static const struct metric_family fam_api = {
	"kinfer_api_requests_total",
	"Kubernetes API requests by verb and HTTP code (0: no answer).",
	METRIC_COUNTER,
	api_labels,
	NULL,
	0
};
static const struct metric_family fam_api_latency = { "kinfer_api_request_duration_seconds",
						      "Kubernetes API request latency by verb.",
						      METRIC_HISTOGRAM,
						      api_verb_labels,
						      metrics_latency_buckets,
						      15 };
static const char *const build_labels[] = { "version", NULL };
static const struct metric_family fam_build = {
	"kinfer_build_info", "The running version.", METRIC_GAUGE, build_labels, NULL, 0
};

static void observe_api(const char *verb, long code, double seconds, void *ud)
{
	struct metrics *m = ud;
	char c[16];
	snprintf(c, sizeof(c), "%ld", code);
	const char *lv[] = { verb, c };
	metric_add(metrics_series(m, &fam_api, lv), 1);
	metric_observe(metrics_series(m, &fam_api_latency, lv), seconds);
}

/* /healthz and /readyz while the API server is waited for: alive, and
 * not ready (nothing is watched or served yet). */
static bool waiting_healthy(void *ud, char *msg, size_t len)
{
	(void)ud;
	snprintf(msg, len, "ok: waiting for the API server");
	return true;
}

static bool waiting_ready(void *ud, char *msg, size_t len)
{
	(void)ud;
	snprintf(msg, len, "not connected to the API server yet");
	return false;
}

/* The wait's HTTP server: started when the first try failed. */
struct waiting_http {
	const char *addr;
	struct metrics *metrics;
	struct httpserver *hs;
};

static void serve_while_waiting(void *ud)
{
	struct waiting_http *w = ud;
	struct httpserver_hooks h = { waiting_healthy, waiting_ready, NULL, NULL };
	if (w->addr && *w->addr && httpserver_start(w->addr, w->metrics, &h, &w->hs) == 0)
		log_info("serving health while waiting for the API server", "addr=%s port=%u",
			 w->addr, httpserver_port(w->hs));
}

/*
 * Reach the API server, waiting for it (kube_wait_for_server) when it is
 * down as kinfer starts. Meanwhile /healthz answers 200 and /readyz 503 on
 * --http-addr, so the kubelet's startup and liveness probes do not restart
 * a process that is only waiting; the manager serves them once connected.
 * Asked through the Lease's client (one retry, --retry-period's timeout):
 * the controllers' client retries a request 5 times, 6-9 s against a
 * server that is down, and the tries would be that far apart. 1 when a
 * stop signal came first.
 */
static int reach_server(const struct config *cfg, struct kube_client *c, struct metrics *metrics,
			const sigset_t *stop, char *version, size_t len)
{
	struct waiting_http w = { cfg->http_addr, metrics, NULL };
	struct kube_status st;
	int sig;
	int r = kube_wait_for_server(c, stop, serve_while_waiting, &w, version, len, &st, &sig);
	httpserver_stop(w.hs);
	if (r == -EINTR) {
		log_info("signal received before the API server was reached", "signal=%d", sig);
		return 1;
	}
	return r;
}

static int connect_cluster(const struct config *cfg, struct metrics *metrics, const sigset_t *stop,
			   struct kube_auth **ret_auth, struct kube_client **ret,
			   struct kube_client **ret_lease)
{
	struct kube_client_options o = {
		.qps = cfg->kube_api_qps,
		.burst = cfg->kube_api_burst,
		.timeout_ms = cfg->kube_api_timeout_ms,
		.max_retries = cfg->kube_api_retries,
		.user_agent = "kinfer-operator/" KINFER_VERSION,
	};
	/* The Lease gets a client of its own: requests must end well inside
	 * the renew deadline, and never wait behind the controllers' budget. */
	struct kube_client_options lo = {
		.qps = -1,
		.timeout_ms = cfg->retry_period_ms > 0 ? cfg->retry_period_ms : 2000,
		.max_retries = 1,
		.backoff_base_ms = 100,
		.user_agent = "kinfer-operator/" KINFER_VERSION " leader-election",
	};
	struct kube_auth *auth = NULL;
	char err[1024], version[64];
	int r;

	r = kube_auth_load(cfg->kubeconfig, cfg->context, &auth, err, sizeof(err));
	if (r < 0) {
		log_error("cannot configure the API client", "error=%s", err);
		return r;
	}
	r = kube_client_new(auth, &o, ret);
	if (r == 0)
		r = kube_client_new(auth, &lo, ret_lease);
	if (r < 0) {
		log_error("cannot create the API client", "error=%s", strerror(-r));
		kube_client_free(*ret);
		kube_auth_free(auth);
		return r;
	}
	log_info("API client configured", "server=%s context=%s source=%s", auth->server,
		 auth->context, auth->source);
	kube_client_set_observer(*ret, observe_api, metrics);
	kube_client_set_observer(*ret_lease, observe_api, metrics);
	r = reach_server(cfg, *ret_lease, metrics, stop, version, sizeof(version));
	if (r != 0) {
		kube_client_free(*ret);
		kube_client_free(*ret_lease);
		kube_auth_free(auth);
		return r;
	}
	log_info("connected to the API server", "server=%s version=%s", kube_client_server(*ret),
		 version);
	*ret_auth = auth;
	return 0;
}

/*
 * The webhook's threads ask the manager's caches who owns a Deployment,
 * and whether an InferenceService scales itself (POST /validate-scale).
 * The manager is published here once it runs and taken back, with a grace
 * period waited, before it is freed; the webhook serves on for
 * --webhook-shutdown-delay, and a scale it is asked about meanwhile is
 * allowed (not known).
 */
static _Atomic(struct manager *) served_manager;

/* The manager, inside a read-side section the caller ends with
 * cache_read_unlock; NULL (and no section) while none is served. */
static struct manager *served_read_lock(void)
{
	struct manager *m;

	if (cache_register_reader() < 0)
		return NULL;
	cache_read_lock();
	m = atomic_load_explicit(&served_manager, memory_order_acquire);
	if (!m)
		cache_read_unlock();
	return m;
}

static int deployment_owner(void *ud, const char *ns, const char *name, char *isvc, size_t len)
{
	struct manager *m = served_read_lock();
	int r;

	(void)ud;
	if (!m)
		return -EAGAIN;
	r = snapshot_deployment_owner(m, ns, name, isvc, len);
	cache_read_unlock();
	return r;
}

static int isvc_scaling(void *ud, const char *ns, const char *name, int32_t *min, int32_t *max)
{
	struct manager *m = served_read_lock();
	int r;

	(void)ud;
	if (!m)
		return -EAGAIN;
	r = snapshot_isvc_scaling(m, ns, name, min, max);
	cache_read_unlock();
	return r;
}

static int run_manager(const struct config *cfg, const struct kube_auth *auth,
		       struct kube_client *client, struct kube_client *lease_client,
		       struct metrics *metrics, uint64_t *signal_ns)
{
	struct manager *m = NULL;
	struct events *events = NULL;
	struct kinfer_context cd = {
		.workload = { .shared_gpu_resource = cfg->shared_gpu_resource,
			      .scheduler_name = cfg->placement ? cfg->scheduler_name : NULL },
		.metrics = metrics,
		.scrape_timeout_ms = cfg->autoscale_scrape_timeout_ms,
		.activator_namespace = cfg->activator_namespace && *cfg->activator_namespace ?
			cfg->activator_namespace : auth->namespace,
		.activator_port = cfg->activator_port,
		.placement = {
			.enabled = cfg->placement,
			.scheduler_name = cfg->scheduler_name,
			.index = cfg->placement_index,
			.index_check = cfg->placement_index_check,
			.weights = { cfg->weight_cached, cfg->weight_utilization, cfg->weight_packing,
				     cfg->weight_fragmentation },
		},
	};
	char host[128] = "kinfer-operator";
	const char *lease_ns = cfg->leader_election_namespace && *cfg->leader_election_namespace ?
				       cfg->leader_election_namespace :
				       auth->namespace;
	struct manager_options mo = {
		.client = client,
		.lease_client = lease_client,
		.metrics = metrics,
		.controllers = kinfer_controllers,
		.n_controllers = kinfer_n_controllers,
		.controller_data = &cd,
		.http_addr = cfg->http_addr && *cfg->http_addr ? cfg->http_addr : NULL,
		.watch_namespace = cfg->watch_namespace && *cfg->watch_namespace ?
					   cfg->watch_namespace :
					   NULL,
		.resync_ns = (uint64_t)cfg->resync_ms * KTIME_NSEC_PER_MSEC,
		.shutdown_timeout_ns = (uint64_t)cfg->shutdown_timeout_ms * KTIME_NSEC_PER_MSEC,
		.leader_elect = cfg->leader_elect,
		.lease_namespace = lease_ns,
		.lease_name = cfg->leader_election_id,
		.lease_ns = (uint64_t)cfg->lease_duration_ms * KTIME_NSEC_PER_MSEC,
		.renew_deadline_ns = (uint64_t)cfg->renew_deadline_ms * KTIME_NSEC_PER_MSEC,
		.retry_ns = (uint64_t)cfg->retry_period_ms * KTIME_NSEC_PER_MSEC,
	};
	int r, code;

	if (cfg->leader_elect && (cfg->renew_deadline_ms >= cfg->lease_duration_ms ||
				  cfg->retry_period_ms >= cfg->renew_deadline_ms)) {
		log_error("bad leader election timing",
			  "want=\"retry-period < renew-deadline < lease-duration\" "
			  "lease_duration_ms=%ld renew_deadline_ms=%ld retry_period_ms=%ld",
			  cfg->lease_duration_ms, cfg->renew_deadline_ms, cfg->retry_period_ms);
		return 2;
	}
	if (placement_controller_check(&cd.placement.weights, cd.placement.scheduler_name) < 0) {
		log_error("bad placement settings",
			  "want=\"weights 0-1000, a scheduler name of 1-63 characters\"");
		return 2;
	}
	gethostname(host, sizeof(host) - 1);
	r = events_new(client, "kinfer.io/kinfer-operator", host, &events);
	cd.events = events;
	mo.events = events;
	if (r == 0)
		r = manager_new(&mo, &m);
	if (r == 0)
		r = manager_start(m);
	if (r < 0) {
		log_error("cannot start", "error=%s", strerror(-r));
		manager_free(m);
		events_free(events);
		return 1;
	}
	if (cfg->leader_elect)
		log_info("leader election on", "lease=%s/%s", lease_ns, cfg->leader_election_id);
	atomic_store_explicit(&served_manager, m, memory_order_release);
	code = manager_run_until_signal(m, signal_ns);
	atomic_store_explicit(&served_manager, NULL, memory_order_release);
	cache_synchronize();
	/* The reconcilers are done: what they queued at low priority goes
	 * out now, for a few seconds at most. */
	size_t unsent = events_flush(events, EVENTS_FLUSH_NS);
	if (unsent)
		log_warn("events not sent at stop", "queued=%zu", unsent);
	manager_free(m);
	events_free(events);
	return code;
}

/* The admission webhook: every replica serves it, leader or not. */
static int start_webhook(const struct config *cfg, struct kube_client *client,
			 struct metrics *metrics, struct selfsigned **ret_ss, struct webhook **ret)
{
	struct webhook_options o = {
		.addr = cfg->webhook_addr,
		.cert_file = cfg->webhook_cert_file,
		.key_file = cfg->webhook_key_file,
		.metrics = metrics,
		.lookup = { .deployment_owner = deployment_owner, .isvc_scaling = isvc_scaling },
	};
	struct selfsigned_options so = {
		.client = client,
		.secret = cfg->webhook_secret,
		.hosts = cfg->webhook_cert_hosts,
		.configuration = cfg->webhook_configuration,
	};
	char err[512];
	int r;

	if (!cfg->webhook_addr || !*cfg->webhook_addr)
		return 0;
	if (cfg->webhook_self_signed) {
		r = selfsigned_new(&so, ret_ss, err, sizeof(err));
		if (r < 0) {
			log_error("cannot start the admission webhook", "error=%s", err);
			return r;
		}
		o.source = selfsigned_source;
		o.source_ud = *ret_ss;
	}
	r = webhook_start(&o, ret, err, sizeof(err));
	if (r < 0) {
		log_error("cannot start the admission webhook", "error=%s", err);
		return r;
	}
	log_info("serving the admission webhook", "addr=%s port=%u cert=%s", cfg->webhook_addr,
		 webhook_port(*ret),
		 cfg->webhook_self_signed ? cfg->webhook_secret : cfg->webhook_cert_file);
	return 0;
}

/* The API server reaches the webhook through the Service: after SIGTERM
 * (the pod being deleted, or a rollout) its calls still come here until
 * the EndpointSlice controller and kube-proxy have dropped this pod, a
 * second or more. Stopping at once could refuse them ("connection
 * refused"), and with failurePolicy Fail such a call is a user's apply
 * refused (the activator, which stopped so, had requests refused in every
 * rollout). So the webhook serves until --webhook-shutdown-delay after the
 * signal; the manager stops meanwhile (the Lease is released at once).
 * A second SIGTERM or SIGINT ends the wait. */
static void webhook_linger(const struct config *cfg, const struct webhook *w, uint64_t signal_ns)
{
	uint64_t end = signal_ns + (uint64_t)cfg->webhook_shutdown_delay_ms * KTIME_NSEC_PER_MSEC;
	uint64_t now = ktime_mono_ns();
	sigset_t set;

	if (!w || !signal_ns || now >= end)
		return;
	log_info("the admission webhook serves until the endpoints drop this pod", "for_ms=%llu",
		 (unsigned long long)((end - now) / KTIME_NSEC_PER_MSEC));
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (int i = 0; i < 100000 && (now = ktime_mono_ns()) < end; i++) {
		uint64_t left = end - now;
		struct timespec ts = { (time_t)(left / KTIME_NSEC_PER_SEC),
				       (long)(left % KTIME_NSEC_PER_SEC) };
		if (sigtimedwait(&set, NULL, &ts) > 0) {
			log_info("second signal: the webhook stops now", "delay_ms=%ld",
				 cfg->webhook_shutdown_delay_ms);
			return;
		}
	}
}

static int cmd_run(int argc, char **argv, int argi)
{
	struct config cfg = { 0 };
	struct kube_client *client = NULL, *lease_client = NULL;
	struct kube_auth *auth = NULL;
	struct metrics *metrics = NULL;
	struct webhook *webhook = NULL;
	struct selfsigned *selfsigned = NULL;
	uint64_t signal_ns = 0;
	bool help = false;
	char err[512];
	sigset_t set;
	int r, code;

	/* Block the stop signals before any thread starts: the manager waits
	 * for them with sigwait, so no thread is interrupted by one. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (flags_parse(run_flags, N_RUN_FLAGS, &cfg, argc, argv, &argi, &help, err, sizeof(err)) <
	    0) {
		fprintf(stderr, "kinfer-operator: %s\n", err);
		return 2;
	}
	if (help) {
		usage(stdout);
		return 0;
	}
	if (argi < argc) {
		fprintf(stderr, "kinfer-operator: unexpected argument \"%s\" (see --help)\n",
			argv[argi]);
		return 2;
	}
	if (setup_logging(&cfg) < 0)
		return 2;
	r = metricsource_policy_set(cfg.prometheus_allowed_urls, cfg.allow_custom_promql);
	if (r < 0) {
		fprintf(stderr, "kinfer-operator: --prometheus-allowed-urls: %s \"%s\"\n",
			r == -E2BIG ?
				"more than 32 URLs in" :
				"want comma-separated http:// or https:// base URLs without user info, not",
			cfg.prometheus_allowed_urls);
		return 2;
	}
	keys_register();
	if (cfg.webhook_addr && *cfg.webhook_addr) {
		struct sockaddr_storage ss;
		unsigned sl;
		if (httpserver_parse_addr(cfg.webhook_addr, &ss, &sl) < 0) {
			fprintf(stderr,
				"kinfer-operator: --webhook-addr: invalid value \"%s\": "
				"want host:port\n",
				cfg.webhook_addr);
			return 2;
		}
	}
	log_info("kinfer-operator starting", "version=%s", KINFER_VERSION);
	if (metrics_new(&metrics) < 0)
		return 1;
	const char *bv[] = { KINFER_VERSION };
	metric_set(metrics_series(metrics, &fam_build, bv), 1);
	r = connect_cluster(&cfg, metrics, &set, &auth, &client, &lease_client);
	if (r != 0) {
		metrics_free(metrics);
		code = r > 0 ? 0 : 1;
		log_info("stopped", "exit_code=%d", code);
		return code;
	}
	if (start_webhook(&cfg, client, metrics, &selfsigned, &webhook) < 0) {
		code = 1;
	} else {
		code = run_manager(&cfg, auth, client, lease_client, metrics, &signal_ns);
		webhook_linger(&cfg, webhook, signal_ns);
	}
	webhook_stop(webhook);
	selfsigned_free(selfsigned);
	kube_client_free(lease_client);
	kube_client_free(client);
	kube_auth_free(auth);
	metrics_free(metrics);
	log_info("stopped", "exit_code=%d", code);
	return code;
}

static int cmd_version(int argc, char **argv, int argi)
{
	(void)argc;
	(void)argv;
	(void)argi;
	printf("kinfer-operator %s\n", KINFER_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv, int argi)
{
	(void)argc;
	(void)argv;
	(void)argi;
	usage(stdout);
	return 0;
}

/* The subcommands: the name, up to two other spellings, the entry point
 * (argi: where its arguments start) and the line help prints. */
static const struct subcommand {
	const char *name;
	const char *aliases[2];
	int (*run)(int argc, char **argv, int argi);
	const char *summary;
} subcommands[] = {
	{ "run", { NULL, NULL }, cmd_run, "run the operator against a cluster (default)" },
	{ "activator",
	  { NULL, NULL },
	  activator_main,
	  "hold requests of services scaled to zero, scale them up, forward (see activator --help)" },
	{ "metrics",
	  { NULL, NULL },
	  metricscmd_main,
	  "what the autoscaler reads from saved /metrics pages (see metrics --help)" },
	{ "simulate",
	  { NULL, NULL },
	  simulate_main,
	  "run the autoscaler offline on a trace (see simulate --help)" },
	{ "validate",
	  { NULL, NULL },
	  validate_main,
	  "check InferenceService manifests offline (see validate --help)" },
	{ "version", { "--version", NULL }, cmd_version, "print the version and exit" },
	{ "help", { "--help", "-h" }, cmd_help, "print this help" },
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"kinfer-operator %s: a Kubernetes operator for GPU model serving\n\n"
		"Usage: kinfer-operator [COMMAND] [FLAGS]\n\n"
		"Commands:\n",
		KINFER_VERSION);
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  %-9s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\nFlags of run:\n");
	flags_usage(out, run_flags, N_RUN_FLAGS);
}

static const struct subcommand *find_subcommand(const char *name)
{
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		const struct subcommand *c = &subcommands[i];
		if (strcmp(name, c->name) == 0 ||
		    (c->aliases[0] && strcmp(name, c->aliases[0]) == 0) ||
		    (c->aliases[1] && strcmp(name, c->aliases[1]) == 0))
			return c;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const struct subcommand *c;

	if (argc < 2)
		return cmd_run(argc, argv, 1);
	c = find_subcommand(argv[1]);
	if (c)
		return c->run(argc, argv, 2);
	if (strncmp(argv[1], "--", 2) == 0) /* flags of the default, run */
		return cmd_run(argc, argv, 1);
	fprintf(stderr, "kinfer-operator: unknown command \"%s\" (see --help)\n", argv[1]);
	return 2;
}
