/*
 * libFuzzer target: the AdmissionReview decoder and both webhooks (decode,
 * defaulting with its JSON Patch, validation, the answer). Any bytes: a
 * 400/413 or an answer, never a crash or a leak.
 */
#include "review.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct review_result r;
	if (review_serve((const char *)data, size, REVIEW_VALIDATE, &r) == 0)
		review_result_done(&r);
	if (review_serve((const char *)data, size, REVIEW_MUTATE, &r) == 0)
		review_result_done(&r);
	return 0;
}
