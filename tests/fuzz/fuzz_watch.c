/*
 * libFuzzer target: a watch stream as the API server would send it, fed
 * through the informer's decoder into a Pod cache, into a Deployment
 * cache (a kind that keeps metadata.managedFields for its projection:
 * kinds_edited) and into a PodDisruptionBudget cache (label selectors);
 * then as a LIST page into each. Any bytes: no crash, no
 * leak, no unbounded growth (the event bound applies).
 */
#include "informer.h"
#include "log.h"
#include "kinds.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One informer for the whole run: building a cache per input would spend
 * the time in RCU barriers instead of in the decoder. */
static struct kube_client *client;
static struct informer_set *set;
static struct informer *inf, *dinf, *binf;
/* The keys main registers that the projections read (kinfer.io's names
 * are reconcilers/'s; these stand in for them). */
static const struct kinds_keys keys = { .service_label = "kinfer.io/service",
					.applied_hash = "kinfer.io/applied-hash",
					.field_manager = "kinfer-operator" };
static struct intern *interns;

/* Free the cache at exit: LeakSanitizer cannot follow the table's tagged
 * slots, so a cached pod in no secondary index would look leaked. */
static void free_all(void)
{
	informer_set_free(set);
	intern_free(interns);
	kube_client_free(client);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kube_auth auth = { .server = "https://127.0.0.1:1" };
	struct informer_options o = { .kind = &kind_pods }, d = { .kind = &kind_deployments },
				b = { .kind = &kind_pdbs };

	if (!client) {
		rcu_register_thread();
		if (kube_client_new(&auth, NULL, &client) < 0 || intern_new(&interns) < 0 ||
		    informer_set_new(client, interns, NULL, &set) < 0 ||
		    informer_add(set, &o, &inf) < 0 || informer_add(set, &d, &dinf) < 0 ||
		    informer_add(set, &b, &binf) < 0)
			abort();
		kinds_register_keys(&keys);
		log_setup(LOG_LEVEL_WARN, LOG_FORMAT_LOGFMT, stderr); /* not a line per page */
		atexit(free_all);
	}
	/* In two pieces, so events split across reads are exercised too; then
	 * a newline ends any partial event before the next input. */
	size_t half = size / 2;
	struct informer *all[] = { inf, dinf, binf };
	for (int i = 0; i < 3; i++) {
		if (informer_feed(all[i], (const char *)data, half) == 0)
			informer_feed(all[i], (const char *)data + half, size - half);
		informer_feed(all[i], "\n", 1);
	}
	/* The same bytes as one LIST page (items, metadata.continue and
	 * resourceVersion; the end of a list removes what it did not name). */
	for (int i = 0; i < 3; i++)
		informer_feed_page(all[i], (const char *)data, size);
	return 0;
}
