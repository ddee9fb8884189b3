/*
 * libFuzzer target: `kinfer-operator validate`'s reader: multi-document
 * YAML through yamljson, defaulting and validation of each document. Any
 * bytes: results or an error, never a crash or a leak.
 */
#include "validate.h"

#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	if (!sink)
		sink = fopen("/dev/null", "w");
	if (sink)
		validate_buffer("fuzz.yaml", (const char *)data, size, sink);
	return 0;
}
