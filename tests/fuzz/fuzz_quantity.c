/*
 * libFuzzer target: resource quantities as a pod spec or a manifest carries
 * them ("500m", "16Gi", "1e3", "9223372036854775799m"). Any bytes: no
 * crash and no undefined behaviour (the target runs under UBSan with
 * -fno-sanitize-recover, so a signed overflow aborts), and the two parsers
 * agree: whole units are the milli-units rounded up.
 */
#include "quantity.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char s[128];
	int64_t milli, whole;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	int rm = quantity_parse_milli(s, &milli);
	int rw = quantity_parse(s, &whole);
	if ((rm == 0) != (rw == 0))
		abort();
	if (rm == 0) {
		/* whole*1000 - milli is in [0, 1000) for milli >= 0, and in
		 * (-1000, 0] for milli < 0; computed without overflow. */
		int64_t lo = milli / 1000;
		if (whole != lo && whole != lo + 1)
			abort();
		if (milli >= 0 && whole == lo && milli % 1000 != 0)
			abort();
	}
	return 0;
}
