/*
 * resource.Quantity: "500m", "4", "16Gi", "1.5", "1e3", "100M". Parsed to
 * milli-units (so CPU "250m" is 250 and memory "1Ki" is 1024000), rounded
 * up as Kubernetes rounds, and refused with -EINVAL when malformed or
 * -ERANGE when it does not fit.
 */
#pragma once

#include <stdint.h>

int quantity_parse_milli(const char *s, int64_t *ret_milli);
/* Whole units, rounded up ("1500m" -> 2). */
int quantity_parse(const char *s, int64_t *ret);
