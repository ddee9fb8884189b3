/*
 * kinfer-operator: one binary, several subcommands.
 *
 *   kinfer-operator [run] [flags]   run the operator (the default)
 *   kinfer-operator version         print the version
 *   kinfer-operator help            list subcommands and flags
 *
 * main only wires modules together: flags -> logging -> API client ->
 * (later) caches, controllers, webhook. Every flag is a row of the table
 * below and can also come from the environment variable it names.
 */
#include "flags.h"
#include "kube.h"
#include "kubeconfig.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef KINFER_VERSION
#define KINFER_VERSION "0.0.0-dev"
#endif

struct config {
	const char *kubeconfig;
	const char *context;
	const char *log_level;
	const char *log_format;
	double kube_api_qps;
	int kube_api_burst;
	long kube_api_timeout_ms;
	int kube_api_retries;
};

#define F(name, env, kind, field, def, help) \
	{ name, env, kind, offsetof(struct config, field), def, help }

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
	F("kube-api-timeout", "KINFER_KUBE_API_TIMEOUT", FLAG_DURATION_MS,
	  kube_api_timeout_ms, "30s", "timeout of one API request"),
	F("kube-api-retries", "KINFER_KUBE_API_RETRIES", FLAG_INT, kube_api_retries,
	  "5", "retries of a failed API request that is safe to retry"),
};

#define N_RUN_FLAGS (sizeof(run_flags) / sizeof(run_flags[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"kinfer-operator %s: a Kubernetes operator for GPU model serving\n\n"
		"Usage: kinfer-operator [COMMAND] [FLAGS]\n\n"
		"Commands:\n"
		"  run       run the operator against a cluster (default)\n"
		"  version   print the version and exit\n"
		"  help      print this help\n\n"
		"Flags of run:\n", KINFER_VERSION);
	flags_usage(out, run_flags, N_RUN_FLAGS);
}

static int setup_logging(const struct config *cfg)
{
	enum log_level level;
	enum log_format format;

	if (log_level_parse(cfg->log_level, &level) < 0) {
		fprintf(stderr, "kinfer-operator: --log-level: invalid value \"%s\": "
			"want debug, info, warn or error\n", cfg->log_level);
		return -EINVAL;
	}
	if (log_format_parse(cfg->log_format, &format) < 0) {
		fprintf(stderr, "kinfer-operator: --log-format: invalid value \"%s\": "
			"want logfmt or json\n", cfg->log_format);
		return -EINVAL;
	}
	log_setup(level, format, stderr);
	return 0;
}

static int connect_cluster(const struct config *cfg, struct kube_client **ret)
{
	struct kube_client_options o = {
		.qps = cfg->kube_api_qps,
		.burst = cfg->kube_api_burst,
		.timeout_ms = cfg->kube_api_timeout_ms,
		.max_retries = cfg->kube_api_retries,
		.user_agent = "kinfer-operator/" KINFER_VERSION,
	};
	struct kube_auth *auth = NULL;
	struct kube_status st;
	char err[1024], version[64];
	int r;

	r = kube_auth_load(cfg->kubeconfig, cfg->context, &auth, err, sizeof(err));
	if (r < 0) {
		log_error("cannot configure the API client", "error=%s", err);
		return r;
	}
	r = kube_client_new(auth, &o, ret);
	if (r < 0) {
		log_error("cannot create the API client", "error=%s", strerror(-r));
		kube_auth_free(auth);
		return r;
	}
	log_info("API client configured", "server=%s context=%s source=%s",
		 auth->server, auth->context, auth->source);
	kube_auth_free(auth);
	r = kube_server_version(*ret, version, sizeof(version), &st);
	if (r < 0) {
		log_error("cannot reach the API server", "server=%s error=%s",
			  kube_client_server(*ret), st.message);
		kube_client_free(*ret);
		*ret = NULL;
		return r;
	}
	log_info("connected to the API server", "server=%s version=%s",
		 kube_client_server(*ret), version);
	return 0;
}

/* Block until SIGTERM or SIGINT; the signals are blocked in every thread. */
static int wait_for_signal(void)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (sigwait(&set, &sig) != 0)
		return -EINTR;
	return sig;
}

static int cmd_run(int argc, char **argv, int argi)
{
	struct config cfg = { 0 };
	struct kube_client *client = NULL;
	bool help = false;
	char err[512];
	sigset_t set;

	/* Block the stop signals before any thread starts. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (flags_parse(run_flags, N_RUN_FLAGS, &cfg, argc, argv, &argi, &help,
			err, sizeof(err)) < 0) {
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
	log_info("kinfer-operator starting", "version=%s", KINFER_VERSION);
	if (connect_cluster(&cfg, &client) < 0)
		return 1;
	int sig = wait_for_signal();
	log_info("stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	kube_client_free(client);
	log_info("stopped", "%s", "");
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "run";

	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("kinfer-operator %s\n", KINFER_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv, 2);
	if (strncmp(cmd, "--", 2) == 0)
		return cmd_run(argc, argv, 1);
	fprintf(stderr, "kinfer-operator: unknown command \"%s\" (see --help)\n", cmd);
	return 2;
}
