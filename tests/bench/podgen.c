/*
 * Synthetic Pods from the recorded one. At load every place a varying value
 * occurs in the recording becomes a span (offset, length, which value);
 * rendering copies the bytes between spans and writes each pod's values
 * into them. Loading checks the recording is the expected one by counting
 * each value's occurrences and by rendering the recorded values back.
 */
#include "podgen.h"

#include "cache.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum var {
	V_NAME,
	V_GENNAME,
	V_UID,
	V_RV,
	V_SERVICE,
	V_HASH,
	V_OWNER_NAME,
	V_OWNER_UID,
	V_NODE,
	V_IP,
	V_COUNT
};

/*
 * Where the values sit in tests/data/pod.json. ctx is the text around a
 * value, long enough to tell the pod's name from its owner's; count is how
 * often it occurs (the owner uid and the IP also appear in managedFields).
 */
static const struct {
	const char *ctx;
	const char *val;
	enum var var;
	int count;
} span_defs[] = {
	{ "\"name\":\"llm-7b-7bc4475f95-z975p\"", "llm-7b-7bc4475f95-z975p", V_NAME, 1 },
	{ "\"generateName\":\"llm-7b-7bc4475f95-\"", "llm-7b-7bc4475f95-", V_GENNAME, 1 },
	{ "\"uid\":\"cf8e78e4-d5a2-4892-abeb-da4229343717\"",
	  "cf8e78e4-d5a2-4892-abeb-da4229343717", V_UID, 1 },
	{ "\"resourceVersion\":\"267\"", "267", V_RV, 1 },
	{ "\"kinfer.io/service\":\"llm-7b\"", "llm-7b", V_SERVICE, 1 },
	{ "\"pod-template-hash\":\"7bc4475f95\"", "7bc4475f95", V_HASH, 1 },
	{ "\"name\":\"llm-7b-7bc4475f95\"", "llm-7b-7bc4475f95", V_OWNER_NAME, 1 },
	{ "056b5f22-b9e4-4b15-b3b5-d957a8034a32", "056b5f22-b9e4-4b15-b3b5-d957a8034a32",
	  V_OWNER_UID, 2 },
	{ "\"nodeName\":\"kwok-a100-0\"", "kwok-a100-0", V_NODE, 1 },
	{ "127.77.0.1\\\"", "127.77.0.1", V_IP, 1 }, /* managedFields key */
	{ "\"127.77.0.1\"", "127.77.0.1", V_IP, 2 }, /* podIP, podIPs */
};

#define N_DEFS (sizeof(span_defs) / sizeof(span_defs[0]))
#define MAX_SPANS 16

struct span {
	size_t off, len;
	enum var var;
};

struct podgen {
	char *raw;
	size_t raw_len;
	struct span spans[MAX_SPANS];
	size_t n_spans;
};

static const char event_tail[] = "}\n";

/* Kubernetes' rand.SafeEncodeString alphabet: no vowels, no look-alikes. */
static const char safe_chars[] = "bcdfghjklmnpqrstvwxz2456789";

uint64_t podgen_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

unsigned long podgen_env_n(unsigned long dflt)
{
	const char *s = getenv("BENCH_N");
	char *end;
	unsigned long v;

	if (!s || !*s)
		return dflt;
	errno = 0;
	v = strtoul(s, &end, 10);
	return errno || *end || v == 0 ? dflt : v;
}

char *podgen_read_file(const char *path, size_t *ret_len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
			errno = EIO;
		}
		if (buf) {
			buf[n] = '\0';
			*ret_len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

__attribute__((format(printf, 2, 3))) static void put(char *dst, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, PODGEN_VAL_MAX, fmt, ap);
	va_end(ap);
}

static void safe_encode(uint64_t v, char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = safe_chars[v % (sizeof(safe_chars) - 1)];
		v /= sizeof(safe_chars) - 1;
	}
	out[n] = '\0';
}

static void uuid_of(uint64_t seed, char *out)
{
	uint64_t a = podgen_rand(&seed), b = podgen_rand(&seed);

	put(out, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffffu,
	    (unsigned)a & 0xfffu, 0x8000u | ((unsigned)(b >> 48) & 0x3fffu),
	    (unsigned long long)(b & 0xffffffffffffULL));
}

void podgen_values(const struct podgen_pod *p, struct podgen_values *v)
{
	uint64_t seed = p->owner + 1;
	char suffix[8];

	put(v->service, "llm-%u", p->owner / 3);
	safe_encode(podgen_rand(&seed), v->hash, 10);
	put(v->owner_name, "%.20s-%.10s", v->service, v->hash);
	uuid_of(0x5eed0000ULL + p->owner, v->owner_uid);
	safe_encode(p->id, suffix, 5); /* unique below 27^5 = 14.3 million */
	put(v->name, "%.31s-%s", v->owner_name, suffix);
	uuid_of(p->id, v->uid);
	put(v->rv, "%llu", (unsigned long long)p->rv);
	put(v->node, "kwok-a100-%u", p->node);
	put(v->ip, "10.%u.%u.%u", (unsigned)(p->id >> 16) & 255u, (unsigned)(p->id >> 8) & 255u,
	    (unsigned)p->id & 255u);
}

struct podgen_pod podgen_pod_of(uint64_t id, uint64_t rv, unsigned owners)
{
	return (struct podgen_pod){ .id = id,
				    .owner = (unsigned)(id % owners),
				    .node = (unsigned)(id % PODGEN_NODES),
				    .rv = rv };
}

void podgen_drain(struct cache *c, const uint64_t *ids, size_t n, unsigned owners)
{
	for (size_t i = 0; i < n; i++) {
		struct podgen_pod p = podgen_pod_of(ids ? ids[i] : i, 0, owners);
		struct cache_obj *old;
		char key[128];

		podgen_key(&p, key, sizeof(key));
		if (cache_remove(c, key, &old) == 0)
			cache_retire(c, old);
	}
	cache_barrier();
}

void podgen_key(const struct podgen_pod *p, char *buf, size_t len)
{
	struct podgen_values v;

	podgen_values(p, &v);
	snprintf(buf, len, "default/%s", v.name);
}

/* Copy the template with vals[var] in each span. */
static size_t render_vals(const struct podgen *g, const char *const vals[V_COUNT], char *buf,
			  size_t len)
{
	size_t pos = 0, prev = 0;

	for (size_t i = 0; i <= g->n_spans; i++) {
		size_t off = i < g->n_spans ? g->spans[i].off : g->raw_len;
		const char *v = i < g->n_spans ? vals[g->spans[i].var] : "";
		size_t vl = strlen(v);

		if (pos + (off - prev) + vl + 1 > len)
			return 0;
		memcpy(buf + pos, g->raw + prev, off - prev);
		pos += off - prev;
		memcpy(buf + pos, v, vl);
		pos += vl;
		if (i < g->n_spans)
			prev = off + g->spans[i].len;
	}
	buf[pos] = '\0';
	return pos;
}

size_t podgen_render(const struct podgen *g, const struct podgen_pod *p, char *buf, size_t len)
{
	struct podgen_values v;
	char genname[PODGEN_VAL_MAX + 1];
	const char *vals[V_COUNT];

	podgen_values(p, &v);
	snprintf(genname, sizeof(genname), "%s-", v.owner_name);
	vals[V_NAME] = v.name;
	vals[V_GENNAME] = genname;
	vals[V_UID] = v.uid;
	vals[V_RV] = v.rv;
	vals[V_SERVICE] = v.service;
	vals[V_HASH] = v.hash;
	vals[V_OWNER_NAME] = v.owner_name;
	vals[V_OWNER_UID] = v.owner_uid;
	vals[V_NODE] = v.node;
	vals[V_IP] = v.ip;
	return render_vals(g, vals, buf, len);
}

size_t podgen_event(const struct podgen *g, const char *type, const struct podgen_pod *p, char *buf,
		    size_t len)
{
	int head = snprintf(buf, len, "{\"type\":\"%s\",\"object\":", type);
	size_t n;

	if (head < 0 || (size_t)head >= len)
		return 0;
	n = podgen_render(g, p, buf + head, len - (size_t)head);
	if (n == 0 || (size_t)head + n + sizeof(event_tail) > len)
		return 0;
	memcpy(buf + head + n, event_tail, sizeof(event_tail));
	return (size_t)head + n + sizeof(event_tail) - 1;
}

const char *podgen_raw(const struct podgen *g, size_t *ret_len)
{
	*ret_len = g->raw_len;
	return g->raw;
}

size_t podgen_max_event(const struct podgen *g)
{
	return g->raw_len + g->n_spans * PODGEN_VAL_MAX + 64;
}

void podgen_free(struct podgen *g)
{
	if (!g)
		return;
	free(g->raw);
	free(g);
}

/* Find every span; sort them by offset; refuse overlaps and surprises. */
static int find_spans(struct podgen *g)
{
	for (size_t d = 0; d < N_DEFS; d++) {
		const char *inner = strstr(span_defs[d].ctx, span_defs[d].val);
		int found = 0;

		for (const char *at = strstr(g->raw, span_defs[d].ctx); at;
		     at = strstr(at + 1, span_defs[d].ctx)) {
			if (g->n_spans == MAX_SPANS)
				return -EINVAL;
			g->spans[g->n_spans++] = (struct span){
				(size_t)(at - g->raw) + (size_t)(inner - span_defs[d].ctx),
				strlen(span_defs[d].val), span_defs[d].var
			};
			found++;
		}
		if (found != span_defs[d].count)
			return -EINVAL;
	}
	for (size_t i = 1; i < g->n_spans; i++)
		for (size_t j = i; j > 0 && g->spans[j - 1].off > g->spans[j].off; j--) {
			struct span t = g->spans[j];
			g->spans[j] = g->spans[j - 1];
			g->spans[j - 1] = t;
		}
	for (size_t i = 1; i < g->n_spans; i++)
		if (g->spans[i - 1].off + g->spans[i - 1].len > g->spans[i].off)
			return -EINVAL;
	return 0;
}

/* Rendering the recorded values must give the recorded bytes. */
static int check_identity(const struct podgen *g)
{
	const char *vals[V_COUNT] = { 0 };
	char *buf = malloc(g->raw_len + 1);
	int r = -EINVAL;

	if (!buf)
		return -ENOMEM;
	for (size_t d = 0; d < N_DEFS; d++)
		vals[span_defs[d].var] = span_defs[d].val;
	if (render_vals(g, vals, buf, g->raw_len + 1) == g->raw_len &&
	    memcmp(buf, g->raw, g->raw_len) == 0)
		r = 0;
	free(buf);
	return r;
}

int podgen_new(const char *path, struct podgen **ret)
{
	struct podgen *g = calloc(1, sizeof(*g));
	int r;

	if (!g)
		return -ENOMEM;
	g->raw = podgen_read_file(path, &g->raw_len);
	if (!g->raw) {
		r = errno ? -errno : -EIO;
		goto fail;
	}
	while (g->raw_len > 0 && (g->raw[g->raw_len - 1] == '\n' ||
				  g->raw[g->raw_len - 1] == '\r' || g->raw[g->raw_len - 1] == ' '))
		g->raw[--g->raw_len] = '\0';
	if (memchr(g->raw, '\n', g->raw_len)) {
		r = -EINVAL; /* a watch event is one line: compact JSON only */
		goto fail;
	}
	r = find_spans(g);
	if (r == 0)
		r = check_identity(g);
	if (r < 0)
		goto fail;
	*ret = g;
	return 0;
fail:
	podgen_free(g);
	return r;
}
