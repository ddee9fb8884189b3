/* dynbuf: growth, the cap and toobig, reset, take, and the shared text
 * helpers (bounded copy, errf) and FNV-1a that live beside it in operator/. */
#include "unit.h"

#include "dynbuf.h"
#include "fnv.h"
#include "text.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void grows_and_terminates(void **state)
{
	struct dynbuf b;
	char chunk[1000];
	(void)state;

	dynbuf_init(&b, 1 << 20);
	assert_null(b.p);
	assert_string_equal(dynbuf_str(&b), "");
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 100; i++)
		assert_int_equal(dynbuf_add(&b, chunk, sizeof(chunk)), 0);
	assert_int_equal(b.len, 100000);
	assert_int_equal(b.p[b.len], '\0');
	assert_int_equal(strlen(dynbuf_str(&b)), 100000);
	/* Doubling from the first allocation: 16 KiB -> 128 KiB for 100 kB. */
	assert_int_equal(b.alloc, 8 * DYNBUF_FIRST_ALLOC);
	assert_false(b.toobig);
	dynbuf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
}

/* Appending one byte at a time costs O(n) copies: the allocation only
 * doubles, so 1 MiB of single bytes reallocates about 7 times. */
static void amortised(void **state)
{
	struct dynbuf b;
	size_t reallocs = 0, last = 0;
	(void)state;

	dynbuf_init(&b, 1 << 20);
	for (int i = 0; i < (1 << 20); i++) {
		assert_int_equal(dynbuf_add(&b, "a", 1), 0);
		if (b.alloc != last) {
			reallocs++;
			last = b.alloc;
		}
	}
	assert_true(reallocs <= 8);
	/* The allocation never passes the cap plus its NUL. */
	assert_int_equal(b.alloc, (1 << 20) + 1);
	dynbuf_free(&b);
}

static void cap_is_enforced(void **state)
{
	struct dynbuf b;
	(void)state;

	dynbuf_init(&b, 10);
	assert_int_equal(dynbuf_add(&b, "0123456789", 10), 0); /* exactly the cap */
	assert_false(b.toobig);
	assert_int_equal(dynbuf_add(&b, "x", 1), -EFBIG);
	assert_true(b.toobig);
	/* What was there is kept, intact. */
	assert_string_equal(b.p, "0123456789");
	assert_true(b.alloc <= 11);
	/* An append so large that len + n would wrap is refused, not wrapped. */
	dynbuf_reset(&b, SIZE_MAX);
	assert_false(b.toobig);
	assert_int_equal(dynbuf_add(&b, "abc", SIZE_MAX), -EFBIG);
	assert_int_equal(b.len, 0);
	dynbuf_free(&b);
}

static void reset_keeps_or_frees(void **state)
{
	struct dynbuf b;
	char big[40000] = { 0 };
	(void)state;

	dynbuf_init(&b, 1 << 20);
	assert_int_equal(dynbuf_add(&b, "hello", 5), 0);
	char *p = b.p;
	dynbuf_reset(&b, 1 << 20);
	assert_ptr_equal(b.p, p); /* small: memory kept */
	assert_int_equal(b.len, 0);
	assert_string_equal(dynbuf_str(&b), "");
	assert_int_equal(dynbuf_add(&b, big, sizeof(big)), 0);
	dynbuf_reset(&b, DYNBUF_FIRST_ALLOC); /* over keep: freed */
	assert_null(b.p);
	assert_int_equal(b.alloc, 0);
	dynbuf_free(&b);
}

static void take_hands_over(void **state)
{
	struct dynbuf b;
	size_t len = 99;
	char *s;
	(void)state;

	dynbuf_init(&b, 100);
	assert_null(dynbuf_take(&b, &len));
	assert_int_equal(len, 0);
	assert_int_equal(dynbuf_add(&b, "ab", 2), 0);
	assert_int_equal(dynbuf_add(&b, "cd", 2), 0);
	s = dynbuf_take(&b, &len);
	assert_string_equal(s, "abcd");
	assert_int_equal(len, 4);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	free(s);
	/* An empty append still yields a string. */
	assert_int_equal(dynbuf_add(&b, "", 0), 0);
	s = dynbuf_take(&b, &len);
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

static void text_copy_truncates(void **state)
{
	char small[4], err[8];
	(void)state;

	text_copy(small, sizeof(small), "abcdef");
	assert_string_equal(small, "abc");
	text_copy(small, sizeof(small), NULL);
	assert_string_equal(small, "");
	text_copy(NULL, 0, "x"); /* no buffer: nothing written */
	assert_int_equal(text_errf(err, sizeof(err), -EINVAL, "field %s is bad", "spec.port"),
			 -EINVAL);
	assert_string_equal(err, "field s");
	assert_int_equal(text_errf(NULL, 0, -ENOENT, "%d", 1), -ENOENT);
}

/* The published FNV-1a test vectors (Fowler/Noll/Vo, "test_fnv"). */
static void fnv_vectors(void **state)
{
	(void)state;
	assert_int_equal(fnv32_str(""), 0x811c9dc5u);
	assert_int_equal(fnv32_str("a"), 0xe40c292cu);
	assert_int_equal(fnv32_str("foobar"), 0xbf9cf968u);
	assert_int_equal(fnv32_add(FNV32_INIT, "foobar", 6), 0xbf9cf968u);
	/* The algorithm from the published basis ... */
	assert_true(FNV64_OFFSET_BASIS == 0xcbf29ce484222325ULL);
	assert_true(fnv64_add_str(FNV64_OFFSET_BASIS, "a") == 0xaf63dc4c8601ec8cULL);
	assert_true(fnv64_add_str(FNV64_OFFSET_BASIS, "foobar") == 0x85944171f73967e8ULL);
	/* ... and kinfer's own start value, which the applied-hash annotations
	 * on running objects depend on (see fnv.h): it must not change. */
	assert_true(fnv64_str("") == 1469598103934665603ULL);
	assert_true(fnv64_str("foobar") == fnv64_add_str(1469598103934665603ULL, "foobar"));
	assert_true(fnv64_add_str(fnv64_str("foo"), "bar") == fnv64_str("foobar"));
	assert_true(fnv64_str(NULL) == fnv64_str(""));
	/* A separator byte keeps ("ab","c") and ("a","bc") apart. */
	assert_true(fnv64_add_str(fnv64_add_byte(fnv64_str("ab"), 0xff), "c") !=
		    fnv64_add_str(fnv64_add_byte(fnv64_str("a"), 0xff), "bc"));
}

int tests_dynbuf(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(grows_and_terminates), cmocka_unit_test(amortised),
		cmocka_unit_test(cap_is_enforced),      cmocka_unit_test(reset_keeps_or_frees),
		cmocka_unit_test(take_hands_over),      cmocka_unit_test(text_copy_truncates),
		cmocka_unit_test(fnv_vectors),
	};
	return cmocka_run_group_tests_name("dynbuf", tests, NULL, NULL);
}
