/*
 * libFuzzer target: the API server's error answers (kube_status_decode),
 * what every failed request of kinfer's is read through: a Status object,
 * or whatever a proxy in front of the API server sends. The first two
 * bytes are the HTTP code, the rest is the body. No crash, no undefined
 * behaviour, no leak; the texts are terminated and within their arrays;
 * the namespace-terminating cause is only reported when the body names it.
 */
#include "kube.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_status st;
	long code;

	if (size < 2)
		return 0;
	code = (long)(((unsigned)data[0] << 8 | data[1]) % 600);
	memset(&st, 0xa5, sizeof(st));
	st.attempts = 1;
	st.retry_after_s = 0;
	kube_status_decode(code, (const char *)data + 2, size - 2, &st);
	if (!memchr(st.message, '\0', sizeof(st.message)) ||
	    !memchr(st.reason_text, '\0', sizeof(st.reason_text)))
		abort();
	if (st.ns_terminating && !memmem(data + 2, size - 2, "NamespaceTerminating", 20))
		abort();
	if (st.retry_after_s < 0 || st.attempts != 1)
		abort();
	(void)kube_reason_name(st.reason);
	return 0;
}
