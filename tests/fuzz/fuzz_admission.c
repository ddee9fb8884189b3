/*
 * libFuzzer target: the AdmissionReview decoder and the three webhooks
 * (decode, defaulting with its JSON Patch, validation, a Deployment's scale,
 * the answer). Any bytes: a
 * 400/413 or an answer, never a crash or a leak.
 */
#include "review.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every answer an owner lookup can give, chosen by the name. */
static int owner(void *ud, const char *ns, const char *name, char *isvc, size_t len)
{
	(void)ud;
	(void)ns;
	switch (name[0] % 3) {
	case 0:
		snprintf(isvc, len, "%s", name);
		return 1;
	case 1:
		return 0;
	default:
		return -EAGAIN;
	}
}

static int scaling(void *ud, const char *ns, const char *name, int32_t *min, int32_t *max)
{
	(void)ud;
	(void)ns;
	*min = 0;
	*max = 1000;
	return name[0] % 3 == 0 ? 1 : name[0] % 3 == 1 ? 0 : -EAGAIN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct review_result r;
	if (review_serve((const char *)data, size, REVIEW_VALIDATE, &r) == 0)
		review_result_done(&r);
	if (review_serve((const char *)data, size, REVIEW_MUTATE, &r) == 0)
		review_result_done(&r);
	struct review_lookup l = { owner, scaling, NULL };
	if (review_serve_with((const char *)data, size, REVIEW_SCALE, &l, &r) == 0)
		review_result_done(&r);
	return 0;
}
