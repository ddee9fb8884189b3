/*
 * leader: the state logic of client-go's tryAcquireOrRenew (leader_decide)
 * and the Lease record it reads; the loop and the API writes are covered
 * by scenario.leader and scenario.failover against the real API server.
 */
#include "unit.h"

#include "ktime.h"
#include "leader.h"

#include <string.h>

#define S KTIME_NSEC_PER_SEC

static void record(struct leader_record *r, const char *holder, long duration_s, long transitions)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->holder, holder);
	r->duration_s = duration_s;
	r->acquire_us = 111;
	r->renew_us = 222;
	r->transitions = transitions;
}

static void free_lease_is_taken(void **state)
{
	struct leader_record cur, want;
	uint64_t exp = 0;
	(void)state;
	record(&cur, "", 15, 4); /* released: empty holder */
	assert_int_equal(leader_decide(&cur, "me", 15, 100 * S, 100 * S, 5000, &want, &exp),
			 LEADER_ACQUIRE);
	assert_string_equal(want.holder, "me");
	assert_int_equal(want.duration_s, 15);
	assert_int_equal(want.acquire_us, 5000);
	assert_int_equal(want.renew_us, 5000);
	assert_int_equal(want.transitions, 5);
}

/* Another holder's lease is valid for its duration from when WE saw it
 * change, whatever its renewTime says. */
static void others_valid_lease_waits(void **state)
{
	struct leader_record cur, want;
	uint64_t exp = 0;
	(void)state;
	record(&cur, "other", 20, 1);
	assert_int_equal(leader_decide(&cur, "me", 15, 100 * S, 105 * S, 5000, &want, &exp),
			 LEADER_WAIT);
	assert_int_equal(exp, 15 * S); /* the record's 20 s, not our 15 */
	assert_int_equal(leader_decide(&cur, "me", 15, 100 * S, 120 * S - 1, 5000, &want, &exp),
			 LEADER_WAIT);
	assert_int_equal(exp, 1);
	/* At 20 s it has expired: taken, one more transition. */
	assert_int_equal(leader_decide(&cur, "me", 15, 100 * S, 120 * S, 5000, &want, &exp),
			 LEADER_ACQUIRE);
	assert_int_equal(want.transitions, 2);
	assert_int_equal(want.acquire_us, 5000);
}

/* A record without a duration is judged by ours. */
static void missing_duration_uses_ours(void **state)
{
	struct leader_record cur, want;
	uint64_t exp = 0;
	(void)state;
	record(&cur, "other", 0, 0);
	assert_int_equal(leader_decide(&cur, "me", 15, 0, 14 * S, 1, &want, &exp), LEADER_WAIT);
	assert_int_equal(exp, 1 * S);
	assert_int_equal(leader_decide(&cur, "me", 15, 0, 15 * S, 1, &want, &exp), LEADER_ACQUIRE);
}

/* Ours: renewed, keeping acquireTime and the transition count. */
static void own_lease_is_renewed(void **state)
{
	struct leader_record cur, want;
	uint64_t exp = 0;
	(void)state;
	record(&cur, "me", 15, 7);
	assert_int_equal(leader_decide(&cur, "me", 15, 100 * S, 100 * S, 9000, &want, &exp),
			 LEADER_RENEW);
	assert_int_equal(want.acquire_us, 111);
	assert_int_equal(want.renew_us, 9000);
	assert_int_equal(want.transitions, 7);
	/* Even long after it would have expired for anyone else. */
	assert_int_equal(leader_decide(&cur, "me", 15, 0, 1000 * S, 9000, &want, &exp), LEADER_RENEW);
}

/* A Lease as kubectl get -o json shows it. */
static void reads_lease(void **state)
{
	struct leader_record r;
	json_object *lease = json_tokener_parse(
		"{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
		"\"metadata\":{\"name\":\"kinfer-operator\",\"namespace\":\"kinfer-system\","
		"\"resourceVersion\":\"812\"},"
		"\"spec\":{\"holderIdentity\":\"kinfer-operator-7d9f_ab12\",\"leaseDurationSeconds\":15,"
		"\"acquireTime\":\"2024-05-01T10:00:00.000000Z\","
		"\"renewTime\":\"2024-05-01T10:00:12.345678Z\",\"leaseTransitions\":3}}");
	json_object *empty = json_tokener_parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{}}");
	(void)state;
	leader_record_read(lease, &r);
	assert_string_equal(r.holder, "kinfer-operator-7d9f_ab12");
	assert_int_equal(r.duration_s, 15);
	assert_int_equal(r.acquire_us, 1714557600LL * 1000000);
	assert_int_equal(r.renew_us, 1714557612LL * 1000000 + 345678);
	assert_int_equal(r.transitions, 3);
	leader_record_read(empty, &r);
	assert_string_equal(r.holder, "");
	assert_int_equal(r.duration_s, 0);
	assert_int_equal(r.transitions, 0);
	json_object_put(lease);
	json_object_put(empty);
}

int tests_leader(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(free_lease_is_taken),
		cmocka_unit_test(others_valid_lease_waits),
		cmocka_unit_test(missing_duration_uses_ours),
		cmocka_unit_test(own_lease_is_renewed),
		cmocka_unit_test(reads_lease),
	};
	return cmocka_run_group_tests_name("leader", tests, NULL, NULL);
}
