/*
 * libFuzzer target for promtext: any byte string must either parse or be
 * refused with a line-numbered error, and every query on a parsed page
 * must stay in bounds. The first input byte picks tight or default
 * limits so the limit paths are fuzzed too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "promtext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Query the page the way the metric sources will. */
static void exercise(const struct promtext *p)
{
	struct promtext_bucket b[64], c[64];
	struct promtext_matcher m[2];
	size_t n = promtext_count(p), nb, nc, idx;
	double v;
	int64_t ts;

	for (size_t i = 0; i < n && i < 64; i++) {
		const char *name = promtext_name(p, i);
		const char *le = promtext_label(p, i, "le");
		(void)promtext_value(p, i);
		(void)promtext_timestamp(p, i, &ts);
		(void)promtext_family_type(p, name);
		m[0] = (struct promtext_matcher){ "le", le ? le : "", i & 1 };
		m[1] = (struct promtext_matcher){ "model", "", false };
		(void)promtext_find(p, name, m, 2, i, &idx);
		(void)promtext_sum(p, name, m, 1, &v, NULL);
		(void)promtext_avg(p, name, NULL, 0, &v, NULL);
	}
	for (size_t i = 0; i < n && i < 16; i++) {
		char fam[256];
		const char *name = promtext_name(p, i);
		size_t len = strlen(name);
		if (len <= 7 || len >= sizeof(fam) || strcmp(name + len - 7, "_bucket") != 0)
			continue;
		memcpy(fam, name, len - 7);
		fam[len - 7] = '\0';
		if (promtext_histogram(p, fam, NULL, 0, b, 64, &nb) < 0)
			continue;
		(void)promtext_bucket_quantile(0.99, b, nb, &v);
		memcpy(c, b, nb * sizeof(*b));
		nc = nb;
		for (size_t k = 0; k < nc; k++)
			c[k].count = c[k].count * 2 + (double)k;
		(void)promtext_histogram_quantile(0.5, b, nb, c, nc, &v);
		(void)promtext_histogram_quantile(0.99, c, nc, b, nb, &v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct promtext_limits tight = {
		.max_body = 4096,
		.max_line = 256,
		.max_samples = 32,
		.max_labels = 4,
		.max_name = 32,
		.max_label_value = 32,
	};
	struct promtext *p = NULL;
	struct promtext_error err;
	const struct promtext_limits *lim = NULL;
	int r;

	if (size > 0 && data[0] == '\x01') {
		lim = &tight;
		data++;
		size--;
	}
	r = promtext_parse((const char *)data, size, lim, &err, &p);
	if (r < 0) {
		/* A refusal must say where and why. */
		if (p || err.msg[0] == '\0')
			abort();
		return 0;
	}
	exercise(p);
	promtext_free(p);
	return 0;
}
