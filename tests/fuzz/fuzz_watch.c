/*
 * libFuzzer target: a watch stream as the API server would send it, fed
 * through the informer's decoder into a Pod cache. Any bytes: no crash, no
 * leak, no unbounded growth (the event bound applies).
 */
#include "informer.h"
#include "kinds.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One informer for the whole run: building a cache per input would spend
 * the time in RCU barriers instead of in the decoder. */
static struct kube_client *client;
static struct informer_set *set;
static struct informer *inf;
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
	struct informer_options o = { .kind = &kind_pods };

	if (!client) {
		rcu_register_thread();
		if (kube_client_new(&auth, NULL, &client) < 0 || intern_new(&interns) < 0 ||
		    informer_set_new(client, interns, NULL, &set) < 0 ||
		    informer_add(set, &o, &inf) < 0)
			abort();
		atexit(free_all);
	}
	/* In two pieces, so events split across reads are exercised too; then
	 * a newline ends any partial event before the next input. */
	size_t half = size / 2;
	if (informer_feed(inf, (const char *)data, half) == 0)
		informer_feed(inf, (const char *)data + half, size - half);
	informer_feed(inf, "\n", 1);
	return 0;
}
