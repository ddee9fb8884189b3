/*
 * `kinfer-operator metrics`: what the autoscaler would read from one or two
 * saved /metrics pages. The pages go through the same code as a scrape of
 * a pod (promtext, then metricsource_pods_digest with the framework's
 * table), so the answer is the operator's, not a second opinion: for every
 * metric type the value and the series it came from, or why there is none
 * (a missing series is not 0; a rate or a P99 needs two pages).
 */
#include "metricscmd.h"

#include "flags.h"
#include "metricsource.h"
#include "promtext.h"

#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAGE (16u << 20)

static const char *const units[AUTOSCALE_METRIC_TYPE_COUNT] = {
	[AUTOSCALE_QUEUE_DEPTH] = "requests waiting",
	[AUTOSCALE_CONCURRENCY] = "requests running",
	[AUTOSCALE_REQUESTS_PER_SECOND] = "requests/s",
	[AUTOSCALE_GPU_UTILIZATION] = "%",
	[AUTOSCALE_KV_CACHE_UTILIZATION] = "%",
	[AUTOSCALE_LATENCY_P99] = "ms",
	[AUTOSCALE_TIME_TO_FIRST_TOKEN_P99] = "ms",
	[AUTOSCALE_CUSTOM] = "",
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: kinfer-operator metrics --framework vllm|triton|tgi -f PAGE\n"
		     "                               [-f PAGE2 --interval 15s] [-o json]\n\n"
		     "Read saved /metrics pages of a model server (- for standard input) and print,\n"
		     "for every metric type, the value kinfer's autoscaler would use and the series\n"
		     "it comes from, or why it has none. A missing series is missing, not 0; a\n"
		     "rate (RequestsPerSecond) or a P99 needs two pages taken --interval apart.\n"
		     "Values per replica, in the unit of spec.scaling.metrics[].target.\n"
		     "Exit status: 0 the pages parsed, 1 a page did not (FILE:LINE: why),\n"
		     "2 usage errors.\n");
}

static int read_page(const char *path, char **ret, size_t *ret_len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	size_t len = 0, cap = 65536;
	char *buf;

	if (!f)
		return -errno;
	buf = malloc(cap + 1);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
		if (len == cap) {
			char *b = cap >= MAX_PAGE ? NULL : realloc(buf, cap * 2 + 1);
			if (!b) {
				free(buf);
				buf = NULL;
				errno = cap >= MAX_PAGE ? EFBIG : ENOMEM;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	int err = !buf ? -errno : ferror(f) ? -EIO : 0;
	if (f != stdin)
		fclose(f);
	if (err < 0) {
		free(buf);
		return err;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* One type's answer: the value and its series, or why there is none. */
struct answer {
	bool present;
	double value;
	const char *source;
	char missing[METRICSOURCE_ERROR_LEN + 64];
};

static void answer_all(enum isvc_framework fw, const struct promtext *last, size_t n_pages,
		       const struct autoscale_pod *pod, const struct metricsource_result *res,
		       struct answer *a)
{
	for (int t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT; t++) {
		bool per_pod = autoscale_metric_per_pod((enum autoscale_metric_type)t), two = false;
		uint32_t present = per_pod ? pod->present : res->service.present;
		const char *src = t == AUTOSCALE_CUSTOM ?
					  NULL :
					  metricsource_page_series(fw, (enum autoscale_metric_type)t,
								   last, &two);

		memset(&a[t], 0, sizeof(a[t]));
		a[t].source = src;
		if (present & (1u << t)) {
			a[t].present = true;
			a[t].value = per_pod ? pod->values[t] : res->service.values[t];
		} else if (src && two && n_pages < 2) {
			snprintf(a[t].missing, sizeof(a[t].missing),
				 "%s needs two pages (from %s): "
				 "add -f PAGE2 --interval",
				 t == AUTOSCALE_REQUESTS_PER_SECOND ? "a rate" : "a P99", src);
		} else {
			snprintf(a[t].missing, sizeof(a[t].missing), "%s",
				 res->errors[t][0] ? res->errors[t] : "no value");
		}
	}
}

static void print_text(FILE *out, const char *fw_name, size_t n_pages, long interval_ms,
		       const struct answer *a)
{
	fprintf(out, "framework: %s, %zu page%s", fw_name, n_pages, n_pages > 1 ? "s" : "");
	if (n_pages > 1)
		fprintf(out, " %.3gs apart", (double)interval_ms / 1000.0);
	fputc('\n', out);
	for (int t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT; t++) {
		const char *name = autoscale_metric_type_name((enum autoscale_metric_type)t);
		if (a[t].present)
			fprintf(out, "%-20s %-12.6g %-17s from %s\n", name, a[t].value, units[t],
				a[t].source ? a[t].source : "?");
		else
			fprintf(out, "%-20s missing: %s\n", name, a[t].missing);
	}
}

static int print_json(FILE *out, const char *fw_name, const struct answer *a)
{
	json_object *root = json_object_new_object(), *m = json_object_new_object();
	if (!root || !m) {
		json_object_put(root);
		json_object_put(m);
		return -ENOMEM;
	}
	json_object_object_add(root, "framework", json_object_new_string(fw_name));
	for (int t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT; t++) {
		json_object *e = json_object_new_object();
		if (a[t].present) {
			json_object_object_add(e, "value", json_object_new_double(a[t].value));
			json_object_object_add(e, "unit", json_object_new_string(units[t]));
			json_object_object_add(e, "source",
					       json_object_new_string(a[t].source ? a[t].source : ""));
		} else {
			json_object_object_add(e, "missing", json_object_new_string(a[t].missing));
		}
		json_object_object_add(m, autoscale_metric_type_name((enum autoscale_metric_type)t),
				       e);
	}
	json_object_object_add(root, "metrics", m);
	fprintf(out, "%s\n",
		json_object_to_json_string_ext(root,
					       JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	json_object_put(root);
	return 0;
}

int metricscmd_run(const char *fw_name, const char *const *names, const char *const *bodies,
		   const size_t *lens, size_t n_pages, long interval_ms, bool json, FILE *out,
		   FILE *err)
{
	struct autoscale_spec spec = { .min_replicas = 1,
				       .max_replicas = 1,
				       .n_metrics = AUTOSCALE_METRIC_TYPE_COUNT };
	struct metricsource_pod pod = { "page", "127.0.0.1", AUTOSCALE_POD_READY };
	struct metricsource_request rq = { .kind = METRICSOURCE_PODS,
					   .ns = "",
					   .service = "page",
					   .spec = &spec,
					   .pods = &pod,
					   .n_pods = 1 };
	struct metricsource_state *st = NULL;
	struct promtext *last = NULL;
	struct autoscale_pod out_pod;
	struct metricsource_result res;
	struct answer a[AUTOSCALE_METRIC_TYPE_COUNT];
	enum isvc_framework fw;
	int r, code = 0;

	if (isvc_framework_parse(fw_name, &fw) < 0 || fw == ISVC_CUSTOM) {
		fprintf(err,
			"kinfer-operator metrics: --framework must be vllm, triton or tgi, "
			"not \"%s\"\n",
			fw_name);
		return 2;
	}
	rq.framework = fw;
	for (int t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT; t++)
		spec.metrics[t] = (struct autoscale_metric_spec){ (enum autoscale_metric_type)t, 1 };
	/* Every page must parse; the error names the file and the line. */
	for (size_t k = 0; k < n_pages; k++) {
		struct promtext_error pe = { 0 };
		struct promtext *p = NULL;
		r = promtext_parse(bodies[k], lens[k], NULL, &pe, &p);
		if (r < 0) {
			if (pe.line) {
				/* The parser's message starts "line N: ". */
				const char *msg = pe.msg;
				if (strncmp(msg, "line ", 5) == 0 && strchr(msg, ':'))
					msg = strchr(msg, ':') + 1 + (strchr(msg, ':')[1] == ' ');
				fprintf(err, "%s:%u: %s\n", names[k], pe.line, msg);
			} else
				fprintf(err, "%s: %s\n", names[k], pe.msg[0] ? pe.msg : strerror(-r));
			promtext_free(last);
			return 1;
		}
		promtext_free(last);
		last = p;
	}
	if (metricsource_state_new(&st) < 0) {
		promtext_free(last);
		return 1;
	}
	for (size_t k = 0; k < n_pages; k++) {
		const char *b[1] = { bodies[k] };
		const char *fe[1] = { NULL };
		memset(&out_pod, 0, sizeof(out_pod));
		memset(&res, 0, sizeof(res));
		rq.now_ms = (int64_t)k * interval_ms;
		r = metricsource_pods_digest(&rq, st, b, &lens[k], fe, &out_pod, &res);
		if (r < 0) {
			fprintf(err, "%s: cannot be read: %s\n", names[k], strerror(-r));
			code = 1;
			goto out;
		}
	}
	answer_all(fw, last, n_pages, &out_pod, &res, a);
	if (json)
		code = print_json(out, fw_name, a) < 0 ? 1 : 0;
	else
		print_text(out, fw_name, n_pages, interval_ms, a);
out:
	metricsource_state_free(st);
	promtext_free(last);
	return code;
}

int metricscmd_main(int argc, char **argv, int argi)
{
	const char *fw = NULL, *files[2] = { NULL, NULL }, *output = NULL;
	char *bodies[2] = { NULL, NULL };
	size_t lens[2] = { 0, 0 }, n = 0;
	long interval_ms = -1;
	int code = 2;

	for (; argi < argc; argi++) {
		const char *a = argv[argi], *v = NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		bool takes = strcmp(a, "-f") == 0 || strcmp(a, "--framework") == 0 ||
			     strcmp(a, "--interval") == 0 || strcmp(a, "-o") == 0 ||
			     strcmp(a, "--output") == 0;
		if (takes) {
			if (argi + 1 >= argc) {
				fprintf(stderr,
					"kinfer-operator metrics: %s needs a value (see --help)\n",
					a);
				return 2;
			}
			v = argv[++argi];
		} else if (strncmp(a, "--framework=", 12) == 0) {
			a = "--framework", v = argv[argi] + 12;
		} else if (strncmp(a, "--interval=", 11) == 0) {
			a = "--interval", v = argv[argi] + 11;
		} else if (strncmp(a, "--output=", 9) == 0) {
			a = "-o", v = argv[argi] + 9;
		} else {
			fprintf(stderr,
				"kinfer-operator metrics: unexpected argument \"%s\" (see --help)\n",
				a);
			return 2;
		}
		if (strcmp(a, "-f") == 0) {
			if (n == 2) {
				fprintf(stderr, "kinfer-operator metrics: at most two -f pages\n");
				return 2;
			}
			files[n++] = v;
		} else if (strcmp(a, "--framework") == 0) {
			fw = v;
		} else if (strcmp(a, "--interval") == 0) {
			if (flags_parse_duration_ms(v, &interval_ms) < 0 || interval_ms <= 0) {
				fprintf(stderr,
					"kinfer-operator metrics: --interval \"%s\" is not a positive "
					"duration (for example 15s)\n",
					v);
				return 2;
			}
		} else {
			output = v;
		}
	}
	if (!fw || n == 0) {
		fprintf(stderr, "kinfer-operator metrics: --framework and -f are required\n\n");
		usage(stderr);
		return 2;
	}
	if (output && strcmp(output, "json") != 0 && strcmp(output, "text") != 0) {
		fprintf(stderr, "kinfer-operator metrics: -o must be json or text, not \"%s\"\n",
			output);
		return 2;
	}
	if (n == 2 && interval_ms < 0) {
		fprintf(stderr, "kinfer-operator metrics: two pages need --interval, the time between "
				"them (for example --interval 15s)\n");
		return 2;
	}
	if (n == 1 && interval_ms >= 0) {
		fprintf(stderr,
			"kinfer-operator metrics: --interval needs a second page (-f PAGE2)\n");
		return 2;
	}
	if (n == 2 && strcmp(files[0], "-") == 0 && strcmp(files[1], "-") == 0) {
		fprintf(stderr,
			"kinfer-operator metrics: only one page can come from standard input\n");
		return 2;
	}
	{
		enum isvc_framework f;
		if (isvc_framework_parse(fw, &f) < 0 || f == ISVC_CUSTOM) {
			fprintf(stderr,
				"kinfer-operator metrics: --framework must be vllm, triton or "
				"tgi, not \"%s\"\n",
				fw);
			return 2;
		}
	}
	for (size_t k = 0; k < n; k++) {
		int r = read_page(files[k], &bodies[k], &lens[k]);
		if (r < 0) {
			fprintf(stderr, "%s: cannot read: %s\n", files[k],
				r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
			code = 1;
			goto out;
		}
	}
	{
		const char *names[2] = { strcmp(files[0], "-") == 0 ? "<stdin>" : files[0],
					 n > 1 ? (strcmp(files[1], "-") == 0 ? "<stdin>" : files[1]) :
						 NULL };
		const char *b[2] = { bodies[0], bodies[1] };
		code = metricscmd_run(fw, names, b, lens, n, interval_ms < 0 ? 0 : interval_ms,
				      output && strcmp(output, "json") == 0, stdout, stderr);
	}
out:
	free(bodies[0]);
	free(bodies[1]);
	fflush(stdout);
	return code;
}
