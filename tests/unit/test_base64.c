/* base64: RFC 4648 vectors, whitespace, and malformed input. */
#include "unit.h"

#include "base64.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void vectors(void **state)
{
	const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *enc[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	(void)state;
	for (size_t i = 0; i < 7; i++) {
		char *e;
		unsigned char *d;
		size_t n;
		assert_int_equal(base64_encode((const unsigned char *)plain[i], strlen(plain[i]),
					       &e, &n),
				 0);
		assert_string_equal(e, enc[i]);
		assert_int_equal(base64_decode(e, n, &d, &n), 0);
		assert_int_equal(n, strlen(plain[i]));
		assert_memory_equal(d, plain[i], n);
		free(e);
		free(d);
	}
}

static void whitespace_and_errors(void **state)
{
	unsigned char *d;
	size_t n;
	(void)state;
	assert_int_equal(base64_decode("Zm9v\nYmFy\n", 10, &d, &n), 0);
	assert_string_equal((char *)d, "foobar");
	free(d);
	assert_int_equal(base64_decode("Zm9v!", 5, &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Z", 1, &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Zg==Zg==", 8, &d, &n), -EINVAL);
	assert_int_equal(base64_decode("Zg===", 5, &d, &n), -EINVAL);
}

int tests_base64(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vectors),
		cmocka_unit_test(whitespace_and_errors),
	};
	return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
