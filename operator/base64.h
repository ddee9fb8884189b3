/* Standard base64 (RFC 4648), as Kubernetes uses for []byte fields. */
#pragma once

#include <stddef.h>

/* Decode; whitespace is skipped. Returns 0 or -EINVAL; *ret is NUL-ended. */
int base64_decode(const char *in, size_t len, unsigned char **ret, size_t *ret_len);
/* Encode with padding; *ret is NUL-terminated. */
int base64_encode(const unsigned char *in, size_t len, char **ret, size_t *ret_len);
