/*
 * The InferenceService rules and defaults. Each rule is one small function
 * over the spec that adds "field: what is wrong" lines to the report; the
 * GPU products, their memory and their MIG profiles are const tables.
 *
 * Nothing here trusts the input's types: the webhook sees what the API
 * server let through its schema, the offline validator sees raw YAML.
 */
#include "admission.h"

#include "cache.h"
#include "autoscale.h"
#include "cron.h"
#include "isvc.h"
#include "scalingspec.h"
#include "metricsource.h"
#include "presets.h"
#include "quantity.h"
#include "route.h"
#include "schema.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the report --------------------------------------------------------- */

struct admission_report {
	char *errors[ADMISSION_MAX_ERRORS];
	char *warnings[ADMISSION_MAX_WARNINGS];
	size_t n_errors, n_warnings;
	int err; /* -ENOMEM seen while adding */
};

int admission_report_new(struct admission_report **ret)
{
	struct admission_report *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	*ret = r;
	return 0;
}

void admission_report_free(struct admission_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_errors; i++)
		free(r->errors[i]);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r);
}

size_t admission_report_n_errors(const struct admission_report *r)
{
	return r->n_errors;
}
size_t admission_report_n_warnings(const struct admission_report *r)
{
	return r->n_warnings;
}

const char *admission_report_error(const struct admission_report *r, size_t i)
{
	return i < r->n_errors ? r->errors[i] : NULL;
}

const char *admission_report_warning(const struct admission_report *r, size_t i)
{
	return i < r->n_warnings ? r->warnings[i] : NULL;
}

int admission_report_message(const struct admission_report *r, char **ret)
{
	size_t len = 1;
	for (size_t i = 0; i < r->n_errors; i++)
		len += strlen(r->errors[i]) + 2;
	char *s = malloc(len), *p = s;
	if (!s)
		return -ENOMEM;
	*p = '\0';
	for (size_t i = 0; i < r->n_errors; i++) {
		size_t n = strlen(r->errors[i]);
		if (i) {
			memcpy(p, "; ", 2);
			p += 2;
		}
		memcpy(p, r->errors[i], n);
		p += n;
		*p = '\0';
	}
	*ret = s;
	return 0;
}

/* One violation (error) or warning line; fail() and warn() below. */
static void add_line(struct admission_report *r, bool error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void add_line(struct admission_report *r, bool error, const char *fmt, ...)
{
	char buf[ADMISSION_MAX_MESSAGE];
	char **slot;
	va_list ap;

	if (error) {
		if (r->n_errors >= ADMISSION_MAX_ERRORS)
			return;
		slot = &r->errors[r->n_errors];
	} else {
		if (r->n_warnings >= ADMISSION_MAX_WARNINGS)
			return;
		slot = &r->warnings[r->n_warnings];
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* The last slot says that the list is cut. */
	if (error && r->n_errors == ADMISSION_MAX_ERRORS - 1)
		snprintf(buf, sizeof(buf), "and more violations (only the first %d are listed)",
			 ADMISSION_MAX_ERRORS - 1);
	*slot = strdup(buf);
	if (!*slot) {
		r->err = -ENOMEM;
		return;
	}
	if (error)
		r->n_errors++;
	else
		r->n_warnings++;
}

#define fail(r, ...) add_line((r), true, __VA_ARGS__)
#define warn(r, ...) add_line((r), false, __VA_ARGS__)

/* ---- JSON access that tolerates any type --------------------------------- */

static json_object *get(json_object *o, const char *path)
{
	return cache_json_get(o, path);
}
static const char *str(json_object *o, const char *path)
{
	return cache_json_str(o, path);
}

static bool is_obj(json_object *o)
{
	return o && json_object_is_type(o, json_type_object);
}
static bool is_arr(json_object *o)
{
	return o && json_object_is_type(o, json_type_array);
}

/* An integer field: false when absent; *bad when present but not a whole number. */
static bool int_at(json_object *o, const char *path, int64_t *ret, bool *bad)
{
	json_object *v = get(o, path);
	*bad = false;
	if (!v)
		return false;
	if (json_object_is_type(v, json_type_int)) {
		*ret = json_object_get_int64(v);
		return true;
	}
	*bad = true;
	return false;
}

static int64_t int_or(json_object *o, const char *path, int64_t dflt)
{
	int64_t v;
	bool bad;
	return int_at(o, path, &v, &bad) ? v : dflt;
}

/* ---- GPU products ------------------------------------------------------- */

/* MIG profiles per GPU family, as the device plugin's mixed strategy names
 * the resources (nvidia.com/mig-<profile>). From NVIDIA's MIG user guide. */
static const char *const mig_a100_40[] = { "1g.5gb",  "1g.5gb+me", "1g.10gb", "2g.10gb",
					   "3g.20gb", "4g.20gb",   "7g.40gb", NULL };
static const char *const mig_a100_80[] = { "1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb",
					   "3g.40gb", "4g.40gb",    "7g.80gb", NULL };
static const char *const mig_h100_94[] = { "1g.12gb", "1g.12gb+me", "1g.24gb", "2g.24gb",
					   "3g.47gb", "4g.47gb",    "7g.94gb", NULL };
static const char *const mig_h200[] = { "1g.18gb", "1g.18gb+me", "1g.35gb",  "2g.35gb",
					"3g.71gb", "4g.71gb",    "7g.141gb", NULL };
static const char *const mig_a30[] = { "1g.6gb",     "1g.6gb+me", "2g.12gb",
				       "2g.12gb+me", "4g.24gb",   NULL };

struct gpu_product {
	const char *name; /* the nvidia.com/gpu.product label */
	int memory_gib;
	const char *const *mig; /* NULL: no MIG */
};

static const struct gpu_product gpu_products[] = {
	{ "NVIDIA-H200", 141, mig_h200 },
	{ "NVIDIA-H100-NVL", 94, mig_h100_94 },
	{ "NVIDIA-H100-80GB-HBM3", 80, mig_a100_80 },
	{ "NVIDIA-H100-PCIe", 80, mig_a100_80 },
	{ "NVIDIA-A100-SXM4-80GB", 80, mig_a100_80 },
	{ "NVIDIA-A100-80GB-PCIe", 80, mig_a100_80 },
	{ "NVIDIA-A100-SXM4-40GB", 40, mig_a100_40 },
	{ "NVIDIA-A100-PCIE-40GB", 40, mig_a100_40 },
	{ "NVIDIA-A30", 24, mig_a30 },
	{ "NVIDIA-L40S", 48, NULL },
	{ "NVIDIA-L40", 48, NULL },
	{ "NVIDIA-A10G", 24, NULL },
	{ "NVIDIA-A10", 24, NULL },
	{ "NVIDIA-L4", 24, NULL },
	{ "Tesla-V100-SXM2-32GB", 32, NULL },
	{ "Tesla-V100-SXM2-16GB", 16, NULL },
	{ "Tesla-T4", 16, NULL },
	{ "NVIDIA-T4", 16, NULL },
};
#define N_PRODUCTS (sizeof(gpu_products) / sizeof(gpu_products[0]))

static const struct gpu_product *product_find(const char *name)
{
	for (size_t i = 0; name && i < N_PRODUCTS; i++)
		if (strcmp(gpu_products[i].name, name) == 0)
			return &gpu_products[i];
	return NULL;
}

int admission_gpu_memory_gib(const char *product)
{
	const struct gpu_product *p = product_find(product);
	return p ? p->memory_gib : 0;
}

static bool mig_in(const char *const *set, const char *profile)
{
	for (size_t i = 0; set && set[i]; i++)
		if (strcmp(set[i], profile) == 0)
			return true;
	return false;
}

/* "2c.3g.40gb" -> the GPU instance "3g.40gb", its slices and memory (GB). */
static const char *mig_instance(const char *profile, int *ret_compute, int *ret_slices, int *ret_gb)
{
	const char *gi = profile;
	int c = 0;
	if (profile[0] >= '1' && profile[0] <= '7' && profile[1] == 'c' && profile[2] == '.') {
		c = profile[0] - '0';
		gi = profile + 3;
	}
	*ret_compute = c;
	*ret_slices = gi[0] >= '1' && gi[0] <= '7' ? gi[0] - '0' : 0;
	*ret_gb = gi[0] && gi[1] == 'g' && gi[2] == '.' ? (int)strtol(gi + 3, NULL, 10) : 0;
	return gi;
}

static void list_profiles(const char *const *set, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; set[i] && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", set[i]);
}

/* ---- names -------------------------------------------------------------- */

/* A label value (and the name part of a key): at most 63 of [A-Za-z0-9-_.],
 * starting and ending alphanumeric; empty allowed for values. */
static bool label_value_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0)
		return true;
	if (n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', at most 253. */
static bool dns_subdomain_ok(const char *s, size_t n)
{
	if (n == 0 || n > 253 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-' ||
		      s[i] == '.'))
			return false;
	return true;
}

static bool label_key_ok(const char *k)
{
	const char *slash = strchr(k, '/');
	const char *name = slash ? slash + 1 : k;
	if (slash && !dns_subdomain_ok(k, (size_t)(slash - k)))
		return false;
	return *name && label_value_ok(name);
}

/* An image reference: [domain[:port]/]path[:tag][@digest]. The path is
 * lowercase components joined by '/'; the tag at most 128 of [\w.-]. */
static bool image_ok(const char *img, bool *ret_pinned)
{
	char buf[600];
	const char *at = strchr(img, '@');
	size_t n = at ? (size_t)(at - img) : strlen(img);

	*ret_pinned = false;
	if (n == 0 || n >= sizeof(buf))
		return false;
	for (const char *p = img; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return false;
	if (at) {
		const char *colon = strchr(at, ':');
		if (!colon || colon == at + 1 || strlen(colon + 1) < 32)
			return false;
		for (const char *p = colon + 1; *p; p++)
			if (!isxdigit((unsigned char)*p))
				return false;
		*ret_pinned = true;
	}
	memcpy(buf, img, n);
	buf[n] = '\0';
	char *slash = strrchr(buf, '/'), *colon = strrchr(buf, ':');
	if (colon && (!slash || colon > slash)) {
		const char *tag = colon + 1;
		size_t tl = strlen(tag);
		if (tl == 0 || tl > 128 || !(isalnum((unsigned char)tag[0]) || tag[0] == '_'))
			return false;
		for (size_t i = 0; i < tl; i++)
			if (!isalnum((unsigned char)tag[i]) && !strchr("_.-", tag[i]))
				return false;
		if (strcmp(tag, "latest") != 0)
			*ret_pinned = true;
		*colon = '\0';
	}
	/* The first component is a registry when it has a '.' or ':' or is
	 * localhost; registries may have upper case and a port. */
	char *comp = buf, *next;
	bool first = true;
	for (; comp; comp = next, first = false) {
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		size_t cl = strlen(comp);
		if (cl == 0)
			return false;
		bool registry = first && next &&
				(strchr(comp, '.') || strchr(comp, ':') ||
				 strcmp(comp, "localhost") == 0);
		for (size_t i = 0; i < cl; i++) {
			char ch = comp[i];
			bool ok = islower((unsigned char)ch) || isdigit((unsigned char)ch) ||
				  strchr("._-", ch) ||
				  (registry && (isupper((unsigned char)ch) || ch == ':'));
			if (!ok)
				return false;
		}
		if (!isalnum((unsigned char)comp[0]) || !isalnum((unsigned char)comp[cl - 1]))
			return false;
	}
	return true;
}

/* ---- the rules ---------------------------------------------------------- */

struct spec_ctx {
	json_object *spec;
	const char *name; /* metadata.name, NULL when absent */
	const struct preset *preset;
	enum isvc_framework fw;
	bool fw_ok;
	struct admission_report *r;
};

static void rule_basics(json_object *obj, struct spec_ctx *c)
{
	const char *av = str(obj, "apiVersion"), *kind = str(obj, "kind");
	const char *name = str(obj, "metadata.name");
	struct admission_report *r = c->r;

	if (!av || strcmp(av, "kinfer.io/v1alpha1") != 0)
		fail(r, "apiVersion: \"%s\" is not kinfer.io/v1alpha1", av ? av : "");
	if (!kind || strcmp(kind, "InferenceService") != 0)
		fail(r, "kind: \"%s\" is not InferenceService", kind ? kind : "");
	if (name && *name) {
		size_t n = strlen(name);
		bool ok = n <= 63 && islower((unsigned char)name[0]) &&
			  isalnum((unsigned char)name[n - 1]);
		for (size_t i = 0; ok && i < n; i++)
			ok = islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
			     name[i] == '-';
		if (!ok)
			fail(r,
			     "metadata.name: \"%s\" must be a DNS-1035 label (at most 63 lowercase "
			     "letters, digits and '-', starting with a letter), as it also names the Service",
			     name);
	} else if (!str(obj, "metadata.generateName")) {
		fail(r, "metadata.name: required");
	}
	json_object *labels = get(obj, "metadata.labels");
	if (is_obj(labels)) {
		json_object_object_foreach(labels, k, v)
		{
			const char *vs = json_object_is_type(v, json_type_string) ?
						 json_object_get_string(v) :
						 NULL;
			if (!label_key_ok(k))
				fail(r, "metadata.labels: \"%s\" is not a valid label key", k);
			else if (!vs || !label_value_ok(vs))
				fail(r,
				     "metadata.labels.%s: \"%s\" is not a valid label value (at most 63 "
				     "of A-Z a-z 0-9 - _ ., starting and ending alphanumeric)",
				     k, vs ? vs : "");
		}
	}
	if (!is_obj(c->spec)) {
		fail(r, "spec: required");
		return;
	}
	const char *model = str(c->spec, "model.name"), *uri = str(c->spec, "model.uri");
	if (!model || !*model)
		fail(r, "spec.model.name: required");
	else if (!label_value_ok(model))
		warn(r,
		     "spec.model.name: \"%s\" is not a valid label value, so pods are not labelled "
		     "kinfer.io/model and placement cannot prefer nodes that cache it",
		     model);
	if (!uri || !strstr(uri, "://"))
		fail(r,
		     "spec.model.uri: required, as scheme://location (s3://, gs://, hf://, pvc://, oci://)");
	const char *fws = str(c->spec, "model.framework");
	c->fw = ISVC_VLLM;
	c->fw_ok = !fws || isvc_framework_parse(fws, &c->fw) == 0;
	if (!c->fw_ok)
		fail(r, "spec.model.framework: \"%s\" is not one of vllm, triton, tgi, custom", fws);
	c->preset = preset_for(c->fw);
}

static void rule_gpu_memory(struct spec_ctx *c, json_object *gpu, const struct gpu_product *p,
			    const char *product)
{
	const char *mem = str(gpu, "memory");
	int64_t bytes;
	if (!mem)
		return;
	if (quantity_parse(mem, &bytes) < 0 || bytes <= 0) {
		fail(c->r,
		     "spec.resources.gpu.memory: \"%s\" is not a positive quantity such as 14Gi",
		     mem);
		return;
	}
	int64_t gib = 1LL << 30;
	if (p && bytes > p->memory_gib * gib) {
		fail(c->r, "spec.resources.gpu.memory: %s exceeds the %dGi of %s", mem,
		     p->memory_gib, p->name);
		return;
	}
	if (!p && !product) {
		const struct gpu_product *big = &gpu_products[0];
		for (size_t i = 1; i < N_PRODUCTS; i++)
			if (gpu_products[i].memory_gib > big->memory_gib)
				big = &gpu_products[i];
		if (bytes > big->memory_gib * gib)
			fail(c->r,
			     "spec.resources.gpu.memory: %s exceeds the largest GPU kinfer knows "
			     "(%dGi, %s); no node can fit it",
			     mem, big->memory_gib, big->name);
	}
}

static void rule_mig(struct spec_ctx *c, json_object *gpu, const struct gpu_product *p,
		     const char *product, int64_t count)
{
	const char *profile = str(gpu, "migProfile");
	char list[256];
	int cslices, slices, gb;
	if (!profile)
		return;
	const char *gi = mig_instance(profile, &cslices, &slices, &gb);
	if (slices == 0 || gb == 0) {
		fail(c->r,
		     "spec.resources.gpu.migProfile: \"%s\" is not a MIG profile such as 1g.10gb or 3g.40gb",
		     profile);
		return;
	}
	if (cslices > slices)
		fail(c->r,
		     "spec.resources.gpu.migProfile: %s has more compute slices (%d) than its "
		     "GPU instance %s (%d)",
		     profile, cslices, gi, slices);
	if (p && !p->mig) {
		fail(c->r,
		     "spec.resources.gpu.migProfile: %s does not support MIG; use sharing "
		     "exclusive, time-slicing or mps",
		     p->name);
	} else if (p && !mig_in(p->mig, gi)) {
		list_profiles(p->mig, list, sizeof(list));
		fail(c->r, "spec.resources.gpu.migProfile: %s is not a MIG profile of %s (it has %s)",
		     gi, p->name, list);
	} else if (!p) {
		bool any = false;
		for (size_t i = 0; i < N_PRODUCTS && !any; i++)
			any = mig_in(gpu_products[i].mig, gi);
		if (!any)
			fail(c->r,
			     "spec.resources.gpu.migProfile: %s is not a MIG profile of any GPU "
			     "kinfer knows",
			     gi);
		else if (!product)
			warn(c->r,
			     "spec.resources.gpu.migProfile: %s without spec.resources.gpu.product; "
			     "set the product so the profile can be checked against it",
			     gi);
	}
	const char *mem = str(gpu, "memory");
	int64_t bytes;
	if (mem && quantity_parse(mem, &bytes) == 0 && bytes > (int64_t)gb << 30)
		fail(c->r, "spec.resources.gpu.memory: %s exceeds the %dgb of MIG profile %s", mem,
		     gb, gi);
	if (count * slices > 7)
		warn(c->r,
		     "spec.resources.gpu.count: %lld instances of %s need %lld slices, more "
		     "than one GPU has (7); they come from several GPUs",
		     (long long)count, gi, (long long)(count * slices));
}

static void rule_gpu(struct spec_ctx *c)
{
	json_object *gpu = get(c->spec, "resources.gpu");
	const char *product, *sharing;
	enum isvc_sharing mode = ISVC_EXCLUSIVE;
	int64_t count = 1;
	bool bad;

	if (!gpu)
		return;
	if (!is_obj(gpu)) {
		fail(c->r, "spec.resources.gpu: must be an object");
		return;
	}
	if (!int_at(gpu, "count", &count, &bad)) {
		count = 1;
		if (bad)
			fail(c->r, "spec.resources.gpu.count: must be a whole number from 0 to 16");
	} else if (count < 0 || count > 16) {
		fail(c->r, "spec.resources.gpu.count: %lld is not from 0 to 16", (long long)count);
	}
	sharing = str(gpu, "sharing");
	if (sharing && isvc_sharing_parse(sharing, &mode) < 0) {
		fail(c->r,
		     "spec.resources.gpu.sharing: \"%s\" is not one of exclusive, time-slicing, mps, mig",
		     sharing);
		return;
	}
	product = str(gpu, "product");
	const struct gpu_product *p = product_find(product);
	if (product && !label_value_ok(product))
		fail(c->r,
		     "spec.resources.gpu.product: \"%s\" is not a valid label value (it selects "
		     "nodes by nvidia.com/gpu.product)",
		     product);
	else if (product && !p)
		warn(c->r,
		     "spec.resources.gpu.product: %s is not a GPU kinfer knows; its memory and "
		     "MIG profiles are not checked",
		     product);
	rule_gpu_memory(c, gpu, p, product);
	/* Sharing against count and profile (beyond the CRD's own rules). */
	switch (mode) {
	case ISVC_EXCLUSIVE:
		if (count > 8)
			warn(c->r,
			     "spec.resources.gpu.count: %lld GPUs per replica; few nodes have more than 8",
			     (long long)count);
		break;
	case ISVC_TIME_SLICING:
		if (count != 1)
			fail(c->r,
			     "spec.resources.gpu.count: must be 1 with sharing time-slicing (a pod gets one share of one GPU)");
		warn(c->r,
		     "spec.resources.gpu.sharing: time-slicing isolates neither memory nor faults; "
		     "replicas on one GPU can run it out of memory");
		break;
	case ISVC_MPS:
		if (count != 1)
			fail(c->r,
			     "spec.resources.gpu.count: must be 1 with sharing mps (a pod gets one share of one GPU)");
		break;
	case ISVC_MIG:
		if (count < 1)
			fail(c->r, "spec.resources.gpu.count: must be at least 1 with sharing mig");
		if (!str(gpu, "migProfile"))
			fail(c->r,
			     "spec.resources.gpu.migProfile: required when spec.resources.gpu.sharing is mig");
		break;
	}
	if (mode != ISVC_MIG && str(gpu, "migProfile"))
		fail(c->r,
		     "spec.resources.gpu.migProfile: allowed only when spec.resources.gpu.sharing is mig");
	if (mode == ISVC_MIG)
		rule_mig(c, gpu, p, product, count);
}

/*
 * Metric types: what the autoscaler's metric source can read for the
 * framework (reconcilers/metricsource.c's table, one table for both).
 * Custom is PromQL, so Prometheus only; GPUUtilization is Triton's own, or
 * the NVIDIA DCGM exporter's through Prometheus for any framework.
 */
static void list_types(enum isvc_framework fw, enum metricsource_kind kind, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (int t = 0; t < AUTOSCALE_METRIC_TYPE_COUNT && o < len; t++)
		if (t != AUTOSCALE_CUSTOM &&
		    metricsource_supports(fw, (enum autoscale_metric_type)t, kind))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
					      autoscale_metric_type_name(
						      (enum autoscale_metric_type)t));
}

static void rule_metric_type(struct spec_ctx *c, size_t i, const char *type,
			     enum metricsource_kind kind, const char *list)
{
	enum autoscale_metric_type t;
	if (autoscale_metric_type_parse(type, &t) < 0) {
		fail(c->r, "spec.scaling.metrics[%zu].type: \"%s\" is not a metric type", i, type);
		return;
	}
	if (metricsource_supports(c->fw, t, kind))
		return;
	if (t == AUTOSCALE_CUSTOM)
		fail(c->r,
		     "spec.scaling.metrics[%zu].type: Custom needs spec.scaling.metricsSource.type "
		     "Prometheus (its query is PromQL)",
		     i);
	else if (t == AUTOSCALE_GPU_UTILIZATION && kind == METRICSOURCE_PODS)
		fail(c->r,
		     "spec.scaling.metrics[%zu].type: %s exports no GPUUtilization; use "
		     "spec.scaling.metricsSource.type Prometheus with the NVIDIA DCGM exporter",
		     i, c->preset->name);
	else
		fail(c->r, "spec.scaling.metrics[%zu].type: %s is not exported by %s (it has %s)",
		     i, type, c->preset->name, list);
}

static void rule_metrics(struct spec_ctx *c, json_object *scaling)
{
	json_object *ms = get(scaling, "metrics");
	const char *src = str(scaling, "metricsSource.type");
	enum metricsource_kind kind = METRICSOURCE_PODS;
	char list[256];

	if (!ms)
		return;
	if (!is_arr(ms)) {
		fail(c->r, "spec.scaling.metrics: must be a list");
		return;
	}
	if (src && metricsource_kind_parse(src, &kind) < 0) {
		fail(c->r, "spec.scaling.metricsSource.type: \"%s\" is not Pods or Prometheus", src);
		return;
	}
	if (kind == METRICSOURCE_PROMETHEUS) {
		/* The operator's allow-list (--prometheus-allowed-urls): refused
		 * here, with the flag named, rather than failing at every query. */
		const char *url = str(scaling, "metricsSource.prometheus.url");
		char why[ADMISSION_MAX_MESSAGE];
		if (url && metricsource_url_allowed(url, why, sizeof(why)) < 0)
			fail(c->r, "spec.scaling.metricsSource.prometheus.url: %s", why);
	}
	list_types(c->fw, kind, list, sizeof(list));
	for (size_t i = 0; i < json_object_array_length(ms) && i < 64; i++) {
		json_object *m = json_object_array_get_idx(ms, i);
		const char *type = str(m, "type");
		if (!type) {
			fail(c->r, "spec.scaling.metrics[%zu].type: required", i);
			continue;
		}
		rule_metric_type(c, i, type, kind, list);
		char why[ADMISSION_MAX_MESSAGE];
		if (strcmp(type, "Custom") == 0 && kind == METRICSOURCE_PROMETHEUS &&
		    metricsource_custom_allowed(why, sizeof(why)) < 0)
			fail(c->r, "spec.scaling.metrics[%zu].type: %s", i, why);
		for (size_t j = 0; j < i; j++)
			if (str(json_object_array_get_idx(ms, j), "type") &&
			    strcmp(str(json_object_array_get_idx(ms, j), "type"), type) == 0)
				fail(c->r,
				     "spec.scaling.metrics[%zu].type: %s is already metrics[%zu]",
				     i, type, j);
		json_object *t = get(m, "target");
		if (!t ||
		    !(json_object_is_type(t, json_type_int) ||
		      json_object_is_type(t, json_type_double)) ||
		    !(json_object_get_double(t) > 0))
			fail(c->r, "spec.scaling.metrics[%zu].target: must be a number above 0", i);
	}
}

static void rule_direction(struct spec_ctx *c, json_object *dir, const char *name, int64_t eval_s,
			   bool *ret_disabled)
{
	json_object *pols = get(dir, "policies");
	const char *sel = str(dir, "selectPolicy");
	int64_t window = int_or(dir, "stabilizationWindowSeconds", -1);

	*ret_disabled = sel && strcmp(sel, "Disabled") == 0;
	if (pols && !is_arr(pols)) {
		fail(c->r, "spec.scaling.behavior.%s.policies: must be a list", name);
		return;
	}
	size_t n = pols ? json_object_array_length(pols) : 0;
	if (n > 10)
		fail(c->r, "spec.scaling.behavior.%s.policies: %zu policies; at most 10", name, n);
	if (pols && n == 0 && !*ret_disabled)
		fail(c->r,
		     "spec.scaling.behavior.%s.policies: empty; give at least one policy or set "
		     "selectPolicy Disabled",
		     name);
	for (size_t i = 0; i < n && i < 16; i++) {
		json_object *p = json_object_array_get_idx(pols, i);
		const char *type = str(p, "type");
		int64_t value = int_or(p, "value", 0), period = int_or(p, "periodSeconds", 0);
		if (!type || (strcmp(type, "Pods") != 0 && strcmp(type, "Percent") != 0))
			fail(c->r,
			     "spec.scaling.behavior.%s.policies[%zu].type: must be Pods or Percent",
			     name, i);
		if (value < 1)
			fail(c->r, "spec.scaling.behavior.%s.policies[%zu].value: must be at least 1",
			     name, i);
		if (period < 1 || period > 1800)
			fail(c->r,
			     "spec.scaling.behavior.%s.policies[%zu].periodSeconds: must be from 1 to 1800",
			     name, i);
		else if (period < eval_s)
			warn(c->r,
			     "spec.scaling.behavior.%s.policies[%zu].periodSeconds: %llds is shorter "
			     "than evaluationIntervalSeconds (%llds); the limit applies per evaluation anyway",
			     name, i, (long long)period, (long long)eval_s);
		for (size_t j = 0; type && j < i; j++) {
			json_object *q = json_object_array_get_idx(pols, j);
			const char *qt = str(q, "type");
			if (qt && strcmp(qt, type) == 0 && int_or(q, "periodSeconds", 0) == period)
				fail(c->r,
				     "spec.scaling.behavior.%s.policies[%zu]: same type and periodSeconds "
				     "as policies[%zu]",
				     name, i, j);
		}
	}
	if (window > 0 && window < eval_s && strcmp(name, "scaleDown") == 0)
		warn(c->r,
		     "spec.scaling.behavior.scaleDown.stabilizationWindowSeconds: %llds is "
		     "shorter than one evaluation (%llds); replicas may flap",
		     (long long)window, (long long)eval_s);
}

static void rule_scaling_controls(struct spec_ctx *c, json_object *s);

/*
 * minReplicas 0: every built-in metric is read from the pods (scraped, or
 * their series in Prometheus), so at 0 replicas none has a value and the
 * service could never scale up again. As the HPA refuses minReplicas 0
 * without an Object or External metric, kinfer needs either scaleToZero
 * (the activator's first held request scales it up) or a Custom query (a
 * value that exists without pods).
 */
static void rule_zero_min(struct spec_ctx *c, json_object *s)
{
	json_object *ms = get(s, "metrics");
	const char *per_pod = NULL;
	if (get(s, "scaleToZero"))
		return;
	for (size_t i = 0; is_arr(ms) && i < json_object_array_length(ms) && i < 64; i++) {
		const char *type = str(json_object_array_get_idx(ms, i), "type");
		if (type && strcmp(type, "Custom") == 0)
			return;
		if (type && !per_pod)
			per_pod = type;
	}
	fail(c->r,
	     "spec.scaling.minReplicas: 0 needs spec.scaling.scaleToZero (kinfer's activator "
	     "wakes the service at the first request) or a metric that has a value with no pods running "
	     "(type Custom, a Prometheus query); %s is read from the pods, so at 0 replicas there is "
	     "no value and the service could never scale up again (the HPA refuses minReplicas 0 "
	     "without an Object or External metric for the same reason)",
	     per_pod ? per_pod : "every metric");
}

static void rule_scaling(struct spec_ctx *c)
{
	json_object *s = get(c->spec, "scaling");
	bool up_off = false, down_off = false;
	if (!s)
		return;
	if (!is_obj(s)) {
		fail(c->r, "spec.scaling: must be an object");
		return;
	}
	int64_t min = int_or(s, "minReplicas", 1), max = int_or(s, "maxReplicas", -1);
	int64_t eval_s = int_or(s, "evaluationIntervalSeconds", 15);
	if (max < 0)
		fail(c->r, "spec.scaling.maxReplicas: required");
	else if (min > max)
		fail(c->r, "spec.scaling.minReplicas: %lld is above maxReplicas %lld",
		     (long long)min, (long long)max);
	else if (min == max)
		warn(c->r,
		     "spec.scaling: minReplicas equals maxReplicas (%lld), so autoscaling never "
		     "changes the replicas",
		     (long long)min);
	if (!get(s, "metrics"))
		fail(c->r, "spec.scaling.metrics: required (at least one)");
	rule_metrics(c, s);
	if (min == 0)
		rule_zero_min(c, s);
	json_object *b = get(s, "behavior");
	if (b && !is_obj(b)) {
		fail(c->r, "spec.scaling.behavior: must be an object");
		return;
	}
	if (get(b, "scaleUp"))
		rule_direction(c, get(b, "scaleUp"), "scaleUp", eval_s, &up_off);
	if (get(b, "scaleDown"))
		rule_direction(c, get(b, "scaleDown"), "scaleDown", eval_s, &down_off);
	if (up_off && down_off)
		fail(c->r,
		     "spec.scaling.behavior: scaleUp and scaleDown are both Disabled, so the "
		     "replicas can never change; remove spec.scaling and set spec.replicas instead");
	else if (up_off)
		warn(c->r, "spec.scaling.behavior.scaleUp.selectPolicy: Disabled; load above the "
			   "targets will not add replicas");
	rule_scaling_controls(c, s);
}

/* ---- the scaling controls (issue 17): activation, fallback, panic,
 * schedules, pause annotations; their own functions so the rules above
 * stay as they were. ---------------------------------------------------- */

/* A JSON number (integer or not) at path; false when absent or not one. */
static bool num_at(json_object *o, const char *path, double *ret)
{
	json_object *v = get(o, path);

	if (!v ||
	    !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return false;
	*ret = json_object_get_double(v);
	return isfinite(*ret);
}

/* An integer field in [lo, hi] when present; required says if absent is wrong. */
static void int_field(struct admission_report *r, json_object *o, const char *path, const char *key,
		      int64_t lo, int64_t hi, bool required)
{
	int64_t v;
	bool bad;

	if (!int_at(o, key, &v, &bad)) {
		if (bad || required)
			fail(r, "%s.%s: %s a whole number from %lld to %lld", path, key,
			     bad ? "must be" : "required,", (long long)lo, (long long)hi);
		return;
	}
	if (v < lo || v > hi)
		fail(r, "%s.%s: %lld is out of range: from %lld to %lld", path, key, (long long)v,
		     (long long)lo, (long long)hi);
}

static void rule_activation(struct spec_ctx *c, json_object *s)
{
	json_object *ms = get(s, "metrics");
	double a, t;

	for (size_t i = 0; is_arr(ms) && i < json_object_array_length(ms) && i < 64; i++) {
		json_object *m = json_object_array_get_idx(ms, i);
		if (!get(m, "activationThreshold"))
			continue;
		if (!num_at(m, "activationThreshold", &a) || a < 0)
			fail(c->r,
			     "spec.scaling.metrics[%zu].activationThreshold: must be a number "
			     ">= 0",
			     i);
		else if (num_at(m, "target", &t) && a >= t)
			warn(c->r,
			     "spec.scaling.metrics[%zu].activationThreshold: %g is not below the "
			     "target %g: at minReplicas the metric waits above its target before "
			     "scaling up",
			     i, a, t);
	}
}

static void rule_fallback(struct spec_ctx *c, json_object *s, int64_t min, int64_t max)
{
	static const char *const behaviors[] = { "static", "currentReplicas",
						 "currentReplicasIfHigher",
						 "currentReplicasIfLower" };
	json_object *f = get(s, "fallback");
	const char *b;
	bool known = false;
	int64_t n;

	if (!f)
		return;
	if (!is_obj(f)) {
		fail(c->r, "spec.scaling.fallback: must be an object");
		return;
	}
	int_field(c->r, f, "spec.scaling.fallback", "failureThreshold", 0, 1000, true);
	int_field(c->r, f, "spec.scaling.fallback", "replicas", 0, 1000, true);
	b = str(f, "behavior");
	for (size_t i = 0; b && i < 4; i++)
		known |= strcmp(b, behaviors[i]) == 0;
	if (get(f, "behavior") && !known)
		fail(c->r, "spec.scaling.fallback.behavior: must be static, currentReplicas, "
			   "currentReplicasIfHigher or currentReplicasIfLower");
	n = int_or(f, "replicas", -1);
	if (n >= 0 && max >= 0 && (n < min || n > max) && (!b || strcmp(b, "currentReplicas") != 0))
		warn(c->r,
		     "spec.scaling.fallback.replicas: %lld is outside minReplicas..maxReplicas "
		     "(%lld..%lld); the fallback is bounded by them",
		     (long long)n, (long long)min, (long long)max);
}

static void rule_panic(struct spec_ctx *c, json_object *s)
{
	json_object *p = get(s, "behavior.panic");

	if (!p)
		return;
	if (!is_obj(p)) {
		fail(c->r, "spec.scaling.behavior.panic: must be an object");
		return;
	}
	int_field(c->r, p, "spec.scaling.behavior.panic", "windowSeconds", 1, 3600, false);
	int_field(c->r, p, "spec.scaling.behavior.panic", "thresholdPercent", 110, 1000, false);
	int_field(c->r, p, "spec.scaling.behavior.panic", "stableWindowSeconds", 6, 3600, false);
	if (int_or(p, "windowSeconds", 6) > int_or(p, "stableWindowSeconds", 60))
		fail(c->r,
		     "spec.scaling.behavior.panic.windowSeconds: %lld is longer than "
		     "stableWindowSeconds (%lld)",
		     (long long)int_or(p, "windowSeconds", 6),
		     (long long)int_or(p, "stableWindowSeconds", 60));
}

static void rule_schedule(struct spec_ctx *c, json_object *e, size_t i, int64_t max)
{
	char path[64], why[300];
	struct cron_expr cron;
	int32_t off;
	const char *v;

	snprintf(path, sizeof(path), "spec.scaling.schedules[%zu]", i);
	if (!is_obj(e)) {
		fail(c->r, "%s: must be an object", path);
		return;
	}
	v = str(e, "cron");
	if (!v)
		fail(c->r, "%s.cron: required", path);
	else if (cron_parse(v, &cron, why, sizeof(why)) < 0)
		fail(c->r, "%s.cron: \"%.64s\": %s", path, v, why);
	v = str(e, "timeZone");
	if (!v)
		fail(c->r, "%s.timeZone: required (UTC or a fixed offset such as UTC+02:00)", path);
	else if (cron_tz_parse(v, &off, why, sizeof(why)) < 0)
		fail(c->r, "%s.timeZone: %s", path, why);
	int_field(c->r, e, path, "durationSeconds", 60, 604800, true);
	int_field(c->r, e, path, "minReplicas", 0, 1000, false);
	int_field(c->r, e, path, "maxReplicas", 1, 1000, false);
	int64_t lo = int_or(e, "minReplicas", -1), hi = int_or(e, "maxReplicas", -1);
	if (lo < 0 && hi < 0)
		fail(c->r, "%s: give minReplicas or maxReplicas (or both)", path);
	else if (lo > (hi > max ? hi : max) && max >= 0)
		fail(c->r,
		     "%s.minReplicas: %lld is above the cap in its window (%lld); raise "
		     "maxReplicas there too",
		     path, (long long)lo, (long long)(hi > max ? hi : max));
}

static void rule_schedules(struct spec_ctx *c, json_object *s, int64_t max)
{
	json_object *l = get(s, "schedules");

	if (!l)
		return;
	if (!is_arr(l)) {
		fail(c->r, "spec.scaling.schedules: must be a list");
		return;
	}
	if (json_object_array_length(l) > AUTOSCALE_MAX_SCHEDULES)
		fail(c->r, "spec.scaling.schedules: %zu entries; at most %d",
		     json_object_array_length(l), AUTOSCALE_MAX_SCHEDULES);
	for (size_t i = 0; i < json_object_array_length(l) && i < AUTOSCALE_MAX_SCHEDULES; i++)
		rule_schedule(c, json_object_array_get_idx(l, i), i, max);
}

static void rule_predictive(struct spec_ctx *c, json_object *s)
{
	json_object *p = get(s, "predictive");

	if (!p)
		return;
	if (!is_obj(p)) {
		fail(c->r, "spec.scaling.predictive: must be an object");
		return;
	}
	int_field(c->r, p, "spec.scaling.predictive", "windowSeconds", 60, 3600, false);
	int_field(c->r, p, "spec.scaling.predictive", "lookaheadSeconds", 1, 3600, false);
	int_field(c->r, p, "spec.scaling.predictive", "maxIncreasePercent", 1, 1000, false);
}

/*
 * spec.scaling.scaleToZero (issue 16): its bounds, and a warning when it
 * cannot take effect: minReplicas above 0 keeps a replica up (the CRD
 * defaults minReplicas to 1, so a user who adds scaleToZero alone would
 * otherwise wonder why nothing happens).
 */
static void rule_scale_to_zero(struct spec_ctx *c, json_object *s, int64_t min)
{
	static const char path[] = "spec.scaling.scaleToZero";
	json_object *z = get(s, "scaleToZero");

	if (!z)
		return;
	if (!is_obj(z)) {
		fail(c->r, "%s: must be an object", path);
		return;
	}
	int_field(c->r, z, path, "idleSeconds", 1, SCALETOZERO_IDLE_S_MAX, false);
	int_field(c->r, z, path, "maxPendingRequests", 1, SCALETOZERO_MAX_PENDING_MAX, false);
	int_field(c->r, z, path, "activationTimeoutSeconds", 1,
		  SCALETOZERO_ACTIVATION_TIMEOUT_S_MAX, false);
	if (min > 0) {
		warn(c->r,
		     "%s: has no effect while spec.scaling.minReplicas is %lld; set minReplicas "
		     "to 0 to let the service scale to zero",
		     path, (long long)min);
		return;
	}
	/* At zero the activator's routing objects carry the name with a
	 * suffix, and a Service's name is a DNS-1035 label: refuse here what
	 * the route controller could never make (the CRD says the same).
	 * The suffixes only: route.c is not linked into the fuzz targets. */
	size_t longest = strlen(ROUTE_PRIVATE_SUFFIX) > strlen(ROUTE_SLICE_SUFFIX) ?
				 strlen(ROUTE_PRIVATE_SUFFIX) :
				 strlen(ROUTE_SLICE_SUFFIX);
	if (c->name && strlen(c->name) + longest > 63)
		fail(c->r,
		     "metadata.name: \"%s\" has %zu characters; with %s and minReplicas 0 it may "
		     "have at most %zu, as kinfer also names the Service NAME%s and the EndpointSlice "
		     "NAME%s after it (at most 63)",
		     c->name, strlen(c->name), path, 63 - longest, ROUTE_PRIVATE_SUFFIX,
		     ROUTE_SLICE_SUFFIX);
}

static void rule_scaling_controls(struct spec_ctx *c, json_object *s)
{
	int64_t min = int_or(s, "minReplicas", 1), max = int_or(s, "maxReplicas", -1);

	rule_scale_to_zero(c, s, min);
	rule_predictive(c, s);
	rule_activation(c, s);
	rule_fallback(c, s, min, max);
	rule_panic(c, s);
	rule_schedules(c, s, max);
}

/* kinfer.io/paused-replicas, paused, paused-scale-in, paused-scale-out
 * (KEDA's pause annotations under kinfer.io/), checked when they change:
 * `kubectl annotate` is an UPDATE whose spec is the same, and an object
 * that got a bad value while the webhook was away can still be updated. */
static void rule_pause_annotations(json_object *obj, json_object *old, struct admission_report *r)
{
	json_object *a = get(obj, "metadata.annotations"), *v;
	json_object *oa = get(old, "metadata.annotations"), *ov;
	bool changed = old == NULL;
	const char *vals[4] = { NULL, NULL, NULL, NULL };
	static const char *const keys[4] = { AUTOSCALE_ANNOTATION_PAUSED_REPLICAS,
					     AUTOSCALE_ANNOTATION_PAUSED,
					     AUTOSCALE_ANNOTATION_PAUSED_SCALE_IN,
					     AUTOSCALE_ANNOTATION_PAUSED_SCALE_OUT };
	struct autoscale_pause p;
	char why[160];

	if (!is_obj(a))
		return;
	for (size_t i = 0; i < 4; i++) {
		if (json_object_object_get_ex(a, keys[i], &v) && v)
			vals[i] = json_object_get_string(v);
		ov = NULL;
		if (is_obj(oa))
			json_object_object_get_ex(oa, keys[i], &ov);
		if (!vals[i] != !ov ||
		    (vals[i] && ov && strcmp(vals[i], json_object_get_string(ov)) != 0))
			changed = true;
	}
	if (changed &&
	    autoscale_pause_parse(vals[0], vals[1], vals[2], vals[3], 0, &p, why, sizeof(why)) < 0)
		fail(r, "metadata.annotations: %s", why);
}

static void rule_warmup_drain(struct spec_ctx *c)
{
	json_object *w = get(c->spec, "warmup");
	int64_t drain = int_or(c->spec, "drain.timeoutSeconds", ISVC_DRAIN_TIMEOUT_S_DEFAULT);
	int64_t timeout = int_or(w, "timeoutSeconds", ISVC_WARMUP_TIMEOUT_S_DEFAULT);
	int64_t req_timeout = int_or(w, "requestTimeoutSeconds", 60);
	int64_t requests = int_or(w, "requests", 3);
	int64_t conc = int_or(w, "concurrency", 1);

	if (w && !is_obj(w)) {
		fail(c->r, "spec.warmup: must be an object");
		return;
	}
	if (w && req_timeout > timeout)
		fail(c->r,
		     "spec.warmup.requestTimeoutSeconds: %llds is above spec.warmup.timeoutSeconds (%llds)",
		     (long long)req_timeout, (long long)timeout);
	if (w && requests > 0 && conc > requests)
		fail(c->r, "spec.warmup.concurrency: %lld is above spec.warmup.requests (%lld)",
		     (long long)conc, (long long)requests);
	if (w && requests > 0 && !str(w, "path") && !c->preset->warmup_path)
		fail(c->r, "spec.warmup.path: required for framework %s (it has no default warm-up)",
		     c->preset->name);
	if (timeout > ISVC_STARTUP_WINDOW_S)
		fail(c->r,
		     "spec.warmup.timeoutSeconds: %llds is above the %ds the startup probe gives "
		     "the model to load; the kubelet restarts the container first",
		     (long long)timeout, ISVC_STARTUP_WINDOW_S);
	if (drain < 0 || drain > ISVC_DRAIN_TIMEOUT_S_MAX)
		fail(c->r, "spec.drain.timeoutSeconds: %lld is not from 0 to %d", (long long)drain,
		     ISVC_DRAIN_TIMEOUT_S_MAX);
	else if (drain == 0)
		warn(c->r,
		     "spec.drain.timeoutSeconds: 0 cuts in-flight requests when a replica goes");
	else if (requests > 0 && drain < req_timeout)
		warn(c->r,
		     "spec.drain.timeoutSeconds: %llds is shorter than one warm-up request may "
		     "take (spec.warmup.requestTimeoutSeconds %llds); a drain may cut requests that long",
		     (long long)drain, (long long)req_timeout);
}

static void rule_image_port(struct spec_ctx *c)
{
	const char *image = str(c->spec, "image");
	json_object *iv = get(c->spec, "image");
	bool pinned = false, bad;
	int64_t port = 0, mport = 0;

	if (iv && !image)
		fail(c->r, "spec.image: must be a string");
	if (c->fw == ISVC_CUSTOM && !iv)
		fail(c->r, "spec.image: required when spec.model.framework is custom");
	if (image && !image_ok(image, &pinned))
		fail(c->r,
		     "spec.image: \"%s\" is not a valid image reference (registry/path:tag or @sha256:digest)",
		     image);
	else if (image && !pinned)
		warn(c->r,
		     "spec.image: %s has no version tag (or :latest); replicas may run different "
		     "images, pin a tag or digest",
		     image);
	if (int_at(c->spec, "port", &port, &bad)) {
		if (port < 1 || port > 65535)
			fail(c->r, "spec.port: %lld is not from 1 to 65535", (long long)port);
	} else if (bad) {
		fail(c->r, "spec.port: must be a whole number from 1 to 65535");
	} else if (c->fw == ISVC_CUSTOM) {
		fail(c->r, "spec.port: required when spec.model.framework is custom");
	} else {
		port = c->preset->port;
	}
	if (int_at(c->spec, "metricsEndpoint.port", &mport, &bad)) {
		if (mport < 1 || mport > 65535)
			fail(c->r, "spec.metricsEndpoint.port: %lld is not from 1 to 65535",
			     (long long)mport);
	} else if (bad) {
		fail(c->r, "spec.metricsEndpoint.port: must be a whole number from 1 to 65535");
	}
	if (c->preset->metrics_port && port == c->preset->metrics_port &&
	    (!mport || mport == c->preset->metrics_port))
		fail(c->r, "spec.port: %lld is the port %s serves its metrics on; choose another",
		     (long long)port, c->preset->name);
	if (port > 0 && port < 1024)
		warn(c->r,
		     "spec.port: %lld is a privileged port; a model server running as non-root "
		     "cannot listen on it",
		     (long long)port);
}

static void rule_scheduling(struct spec_ctx *c)
{
	json_object *sel = get(c->spec, "scheduling.nodeSelector");
	json_object *tol = get(c->spec, "scheduling.tolerations");
	if (is_obj(sel)) {
		json_object_object_foreach(sel, k, v)
		{
			const char *vs = json_object_is_type(v, json_type_string) ?
						 json_object_get_string(v) :
						 NULL;
			if (!label_key_ok(k))
				fail(c->r,
				     "spec.scheduling.nodeSelector: \"%s\" is not a valid label key",
				     k);
			else if (!vs || !label_value_ok(vs))
				fail(c->r,
				     "spec.scheduling.nodeSelector.%s: \"%s\" is not a valid label value",
				     k, vs ? vs : "");
		}
	}
	for (size_t i = 0; is_arr(tol) && i < json_object_array_length(tol) && i < 64; i++) {
		const char *k = str(json_object_array_get_idx(tol, i), "key");
		if (k && *k && !label_key_ok(k))
			fail(c->r,
			     "spec.scheduling.tolerations[%zu].key: \"%s\" is not a valid label key",
			     i, k);
	}
}

/* Fields whose change would silently break the running pods: the framework
 * (another server, other args and metrics), the model's name (what clients
 * ask for, and the pods' label), the GPU sharing mode (another resource:
 * pods of both kinds would fight over one GPU budget during the rollout). */
static const struct {
	const char *path;
	const char *field;
	const char *dflt;
} immutable_fields[] = {
	{ "model.framework", "spec.model.framework", "vllm" },
	{ "model.name", "spec.model.name", NULL },
	{ "resources.gpu.sharing", "spec.resources.gpu.sharing", "exclusive" },
};

static void rule_immutable(struct spec_ctx *c, json_object *old_spec)
{
	for (size_t i = 0; i < sizeof(immutable_fields) / sizeof(immutable_fields[0]); i++) {
		const char *a = str(old_spec, immutable_fields[i].path);
		const char *b = str(c->spec, immutable_fields[i].path);
		if (!a)
			a = immutable_fields[i].dflt;
		if (!b)
			b = immutable_fields[i].dflt;
		if (a && b && strcmp(a, b) != 0)
			fail(c->r,
			     "%s: is immutable (%s -> %s); create a new InferenceService to change it",
			     immutable_fields[i].field, a, b);
	}
}

struct schema_ud {
	struct admission_report *r;
	bool strict;
};

static void on_schema(void *ud, enum schema_finding what, const char *msg)
{
	struct schema_ud *s = ud;
	if (what == SCHEMA_UNKNOWN_FIELD && !s->strict)
		warn(s->r, "%s", msg);
	else
		fail(s->r, "%s", msg);
}

int admission_validate_strict(json_object *obj, json_object *old, struct admission_report *r,
			      bool strict)
{
	struct schema_ud s = { r, strict };
	int ret = admission_validate(obj, old, r);
	json_object *old_spec = get(old, "spec");

	if (ret < 0 || !is_obj(obj))
		return ret;
	if (old && is_obj(old_spec) && json_object_equal(old_spec, get(obj, "spec")))
		return r->err;
	ret = schema_check(obj, on_schema, &s);
	if (ret == -ENOMEM)
		return ret;
	if (ret < 0)
		warn(r, "the CRD schema embedded in this binary cannot be read: "
			"fields were not checked against it");
	return r->err;
}

int admission_validate(json_object *obj, json_object *old, struct admission_report *r)
{
	struct spec_ctx c = { .spec = get(obj, "spec"), .name = str(obj, "metadata.name"), .r = r };
	json_object *old_spec = get(old, "spec");

	if (!is_obj(obj)) {
		fail(r, "the object must be a JSON object");
		return r->err;
	}
	rule_pause_annotations(obj, old, r);
	if (old && is_obj(old_spec) && is_obj(c.spec) && json_object_equal(old_spec, c.spec)) {
		/* Unchanged spec (metadata or status change): only what must hold. */
		return r->err;
	}
	{
		const char *txt = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN);
		char path[256], msg[ADMISSION_MAX_MESSAGE];
		if (txt && kube_json_too_deep(txt, strlen(txt), path, sizeof(path)) == 1) {
			admission_too_deep_message(path, msg, sizeof(msg));
			fail(r, "%s", msg);
			return r->err;
		}
	}
	rule_basics(obj, &c);
	if (is_obj(c.spec)) {
		rule_gpu(&c);
		if (c.fw_ok) {
			rule_scaling(&c);
			rule_warmup_drain(&c);
			rule_image_port(&c);
		}
		rule_scheduling(&c);
		if (is_obj(old_spec))
			rule_immutable(&c, old_spec);
	}
	return r->err;
}

void admission_too_deep_message(const char *path, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%.300s: nested deeper than %d levels counting the object itself; "
		 "kinfer cannot read objects nested deeper, flatten this value",
		 path, KUBE_JSON_MAX_DEPTH);
}

/* ---- defaulting --------------------------------------------------------- */

struct patcher {
	json_object *ops;
	int err;
};

/* Add key=value to parent (at pointer path) when absent; record the op.
 * Takes value's reference. Returns the member now at key. */
static json_object *ensure(struct patcher *pt, json_object *parent, const char *path,
			   const char *key, json_object *value)
{
	json_object *cur;
	char p[256];
	if (!is_obj(parent)) {
		json_object_put(value);
		return NULL;
	}
	if (json_object_object_get_ex(parent, key, &cur)) {
		json_object_put(value);
		return cur;
	}
	if (!value) {
		pt->err = -ENOMEM;
		return NULL;
	}
	json_object *op = json_object_new_object(), *copy = NULL;
	snprintf(p, sizeof(p), "%s/%s", path, key);
	if (!op || json_object_deep_copy(value, &copy, NULL) < 0) {
		json_object_put(op);
		json_object_put(value);
		pt->err = -ENOMEM;
		return NULL;
	}
	json_object_object_add(op, "op", json_object_new_string("add"));
	json_object_object_add(op, "path", json_object_new_string(p));
	json_object_object_add(op, "value", copy);
	json_object_array_add(pt->ops, op);
	json_object_object_add(parent, key, value);
	return value;
}

static json_object *jint(int64_t v)
{
	return json_object_new_int64(v);
}
static json_object *jstr(const char *s)
{
	return json_object_new_string(s);
}
static json_object *jobj(void)
{
	return json_object_new_object();
}

/* Replace "{name}" in every string of a parsed template. */
static json_object *expand_body(const char *tmpl, const char *model)
{
	json_object *b = json_tokener_parse(tmpl);
	char buf[1024];
	if (!is_obj(b))
		return b;
	json_object_object_foreach(b, k, v)
	{
		if (json_object_is_type(v, json_type_string) &&
		    preset_expand(json_object_get_string(v), "", model, 0, buf, sizeof(buf)) == 0)
			json_object_object_add(b, k, jstr(buf));
	}
	return b;
}

static void default_warmup(struct patcher *pt, json_object *spec, const struct preset *pr)
{
	json_object *w = get(spec, "warmup");
	const char *model = str(spec, "model.name");
	char path[1024];

	if (!w && !pr->warmup_path)
		return; /* custom without a warm-up: nothing to send */
	w = ensure(pt, spec, "/spec", "warmup", jobj());
	if (!is_obj(w))
		return;
	/* Without a path the controller uses the preset's path and body. */
	if (!get(w, "path") && pr->warmup_path &&
	    preset_expand(pr->warmup_path, "", model ? model : "", 0, path, sizeof(path)) == 0) {
		ensure(pt, w, "/spec/warmup", "path", jstr(path));
		if (pr->warmup_body)
			ensure(pt, w, "/spec/warmup", "body",
			       expand_body(pr->warmup_body, model ? model : ""));
	}
	ensure(pt, w, "/spec/warmup", "requests", jint(3));
	ensure(pt, w, "/spec/warmup", "concurrency", jint(1));
	ensure(pt, w, "/spec/warmup", "timeoutSeconds", jint(ISVC_WARMUP_TIMEOUT_S_DEFAULT));
	ensure(pt, w, "/spec/warmup", "requestTimeoutSeconds", jint(60));
	ensure(pt, w, "/spec/warmup", "maxAttempts", jint(3));
}

static json_object *policy(const char *type, int value, int period)
{
	json_object *p = jobj();
	json_object_object_add(p, "type", jstr(type));
	json_object_object_add(p, "value", jint(value));
	json_object_object_add(p, "periodSeconds", jint(period));
	return p;
}

/* One direction of the default behavior (behavior.scaleUp or .scaleDown). */
static void default_rules(struct patcher *pt, json_object *behavior, const char *name,
			  const struct autoscale_rules *def)
{
	char path[64];
	json_object *r = ensure(pt, behavior, "/spec/scaling/behavior", name, jobj());

	snprintf(path, sizeof(path), "/spec/scaling/behavior/%s", name);
	ensure(pt, r, path, "stabilizationWindowSeconds", jint(def->stabilization_window_seconds));
	ensure(pt, r, path, "selectPolicy", jstr(autoscale_select_name(def->select)));
	if (is_obj(r) && !get(r, "policies")) {
		json_object *a = json_object_new_array();
		for (size_t i = 0; i < def->n_policies; i++)
			json_object_array_add(
				a, policy(autoscale_policy_type_name(def->policies[i].type),
					  def->policies[i].value, def->policies[i].period_seconds));
		ensure(pt, r, path, "policies", a);
	}
}

/* kinfer's default behavior: autoscale_behavior_defaults, the one table
 * the autoscaler itself applies. */
static void default_scaling(struct patcher *pt, json_object *spec)
{
	struct autoscale_behavior def;
	json_object *s = get(spec, "scaling");
	if (!is_obj(s))
		return;
	autoscale_behavior_defaults(&def);
	ensure(pt, s, "/spec/scaling", "minReplicas", jint(1));
	ensure(pt, s, "/spec/scaling", "tolerance", json_object_new_double(def.scale_up.tolerance));
	ensure(pt, s, "/spec/scaling", "evaluationIntervalSeconds",
	       jint(SCALINGSPEC_DEFAULT_INTERVAL));
	json_object *ms = ensure(pt, s, "/spec/scaling", "metricsSource", jobj());
	ensure(pt, ms, "/spec/scaling/metricsSource", "type", jstr("Pods"));
	json_object *b = ensure(pt, s, "/spec/scaling", "behavior", jobj());
	default_rules(pt, b, "scaleUp", &def.scale_up);
	default_rules(pt, b, "scaleDown", &def.scale_down);
	/* scaleToZero's fixed defaults, as the CRD's; activationTimeoutSeconds
	 * follows spec.warmup's timeout, so it stays unset. */
	json_object *z = get(s, "scaleToZero");
	if (is_obj(z)) {
		ensure(pt, z, "/spec/scaling/scaleToZero", "idleSeconds",
		       jint(SCALETOZERO_IDLE_S_DEFAULT));
		ensure(pt, z, "/spec/scaling/scaleToZero", "maxPendingRequests",
		       jint(SCALETOZERO_MAX_PENDING_DEFAULT));
	}
}

int admission_default(json_object *obj, json_object **ret_patch)
{
	struct patcher pt = { .ops = json_object_new_array() };
	json_object *spec = get(obj, "spec");
	enum isvc_framework fw = ISVC_VLLM;
	int64_t port;
	bool bad;

	if (!pt.ops)
		return -ENOMEM;
	if (!is_obj(spec) || !is_obj(get(spec, "model")))
		goto out;
	const char *fws = str(spec, "model.framework");
	if (fws && isvc_framework_parse(fws, &fw) < 0)
		goto out;
	if (get(spec, "model.framework") && !fws)
		goto out;
	const struct preset *pr = preset_for(fw);
	ensure(&pt, get(spec, "model"), "/spec/model", "framework", jstr(pr->name));
	if (pr->image)
		ensure(&pt, spec, "/spec", "image", jstr(pr->image));
	if (pr->port)
		ensure(&pt, spec, "/spec", "port", jint(pr->port));
	ensure(&pt, spec, "/spec", "healthPath", jstr(pr->health_path));
	if (int_at(spec, "port", &port, &bad)) {
		json_object *me = ensure(&pt, spec, "/spec", "metricsEndpoint", jobj());
		ensure(&pt, me, "/spec/metricsEndpoint", "port",
		       jint(pr->metrics_port ? pr->metrics_port : port));
		ensure(&pt, me, "/spec/metricsEndpoint", "path", jstr(pr->metrics_path));
	}
	if (!get(spec, "scaling"))
		ensure(&pt, spec, "/spec", "replicas", jint(1));
	json_object *gpu = get(spec, "resources.gpu");
	if (is_obj(gpu)) {
		ensure(&pt, gpu, "/spec/resources/gpu", "count", jint(1));
		ensure(&pt, gpu, "/spec/resources/gpu", "sharing", jstr("exclusive"));
	}
	default_scaling(&pt, spec);
	default_warmup(&pt, spec, pr);
	json_object *d = ensure(&pt, spec, "/spec", "drain", jobj());
	ensure(&pt, d, "/spec/drain", "timeoutSeconds", jint(ISVC_DRAIN_TIMEOUT_S_DEFAULT));
	ensure(&pt, d, "/spec/drain", "disruptionBudget", json_object_new_boolean(1));
	ensure(&pt, d, "/spec/drain", "maxUnavailable", jint(1));
	json_object *sch = ensure(&pt, spec, "/spec", "scheduling", jobj());
	ensure(&pt, sch, "/spec/scheduling", "priority", jstr("normal"));
	ensure(&pt, sch, "/spec/scheduling", "preferCachedNodes", json_object_new_boolean(1));
out:
	if (pt.err < 0) {
		json_object_put(pt.ops);
		return pt.err;
	}
	*ret_patch = pt.ops;
	return 0;
}
