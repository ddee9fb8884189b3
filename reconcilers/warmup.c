/*
 * The warm-up controller. For each gated pod whose containers are ready:
 *
 *   WAITING   GET the health path until 200 (the model has loaded)
 *   WARMING   send the warm-up requests, `concurrency` at a time (curl multi)
 *   WARM      set kinfer.io/warmed-up=True through pods/status: the pod
 *             becomes Ready and joins the Service endpoints
 *   FAILED    set the condition False with the reason, count the attempt in
 *             an annotation, retry with backoff (10 s doubling to 5 min);
 *             after maxAttempts the pod is deleted so the ReplicaSet makes a
 *             new one
 *
 * A pod already warm, draining (reason Draining) or going away is left
 * alone.
 */
#include "warmup.h"

#include "backoff.h"
#include "isvc.h"
#include "isvc_controller.h"
#include "kinds.h"
#include "log.h"
#include "podstate.h"
#include "presets.h"
#include "ratelimit.h"
#include "keys.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP_BODY_MAX (1 << 20)

static int errf(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- the plan ----------------------------------------------------------- */

/* The preset's body template with the model name as a JSON string. */
static char *default_body(const struct preset *pr, const char *model)
{
	json_object *name = json_object_new_string(model ? model : "");
	const char *quoted = json_object_to_json_string_ext(name, JSON_C_TO_STRING_NOSLASHESCAPE);
	char buf[2048];
	char *out = NULL;
	/* The template holds "{name}" inside quotes: swap the quoted form in. */
	size_t ql = strlen(quoted);
	char inner[1024];
	if (ql >= 2 && ql - 2 < sizeof(inner)) {
		memcpy(inner, quoted + 1, ql - 2);
		inner[ql - 2] = '\0';
		if (preset_expand(pr->warmup_body, "", inner, 0, buf, sizeof(buf)) == 0)
			out = strdup(buf);
	}
	json_object_put(name);
	return out;
}

int warmup_plan_from_spec(json_object *spec, struct warmup_plan *p, char *err, size_t errlen)
{
	enum isvc_framework fw = ISVC_VLLM;
	json_object *w = cache_json_get(spec, "warmup");
	const char *model = cache_json_str(spec, "model.name");

	memset(p, 0, sizeof(*p));
	isvc_framework_parse(cache_json_str(spec, "model.framework"), &fw);
	const struct preset *pr = preset_for(fw);
	p->port = (int32_t)cache_json_int(spec, "port", pr->port);
	const char *health = cache_json_str(spec, "healthPath");
	snprintf(p->health_path, sizeof(p->health_path), "%s", health ? health : pr->health_path);
	p->requests = (int)cache_json_int(w, "requests", 3);
	p->concurrency = (int)cache_json_int(w, "concurrency", 1);
	p->timeout_s = (int)cache_json_int(w, "timeoutSeconds", 600);
	p->request_timeout_s = (int)cache_json_int(w, "requestTimeoutSeconds", 60);
	p->max_attempts = (int)cache_json_int(w, "maxAttempts", 3);
	if (p->concurrency < 1)
		p->concurrency = 1;
	const char *path = cache_json_str(w, "path");
	json_object *body = cache_json_get(w, "body");
	if (path) {
		snprintf(p->path, sizeof(p->path), "%s", path);
		if (body) {
			p->body = strdup(json_object_to_json_string_ext(body,
					 JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			if (!p->body)
				return -ENOMEM;
		}
	} else if (pr->warmup_path) {
		if (preset_expand(pr->warmup_path, "", model ? model : "", p->port, p->path,
				  sizeof(p->path)) < 0)
			return errf(err, errlen, "spec.model.name: too long for the warm-up path");
		if (pr->warmup_body && !(p->body = default_body(pr, model)))
			return -ENOMEM;
	} else if (p->requests > 0 && !w) {
		/* custom framework, no warm-up given: nothing to send. */
		p->requests = 0;
	} else if (p->requests > 0) {
		return errf(err, errlen, "spec.warmup.path: required for framework %s", pr->name);
	}
	if (p->port <= 0)
		return errf(err, errlen, "spec.port: required for framework %s", pr->name);
	return 0;
}

void warmup_plan_free(struct warmup_plan *p)
{
	free(p->body);
	p->body = NULL;
}

/* ---- running it --------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	size_t *seen = ud;
	(void)ptr;
	*seen += size * nmemb;
	return *seen > WARMUP_BODY_MAX ? 0 : size * nmemb;
}

struct req {
	CURL *h;
	size_t seen;
	struct curl_slist *hdr;
};

static CURL *new_request(const char *url, const char *body, long timeout_ms, struct req *r)
{
	r->seen = 0;
	r->hdr = NULL;
	r->h = curl_easy_init();
	if (!r->h)
		return NULL;
	curl_easy_setopt(r->h, CURLOPT_URL, url);
	curl_easy_setopt(r->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(r->h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
	curl_easy_setopt(r->h, CURLOPT_PROTOCOLS_STR, "http");
	/* The model server (and the simulator) can tell warm-up from traffic. */
	curl_easy_setopt(r->h, CURLOPT_USERAGENT, "kinfer-warmup/1");
	curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(r->h, CURLOPT_WRITEDATA, &r->seen);
	curl_easy_setopt(r->h, CURLOPT_PRIVATE, r);
	if (body) {
		r->hdr = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdr);
		curl_easy_setopt(r->h, CURLOPT_POSTFIELDS, body);
	}
	return r->h;
}

static void end_request(struct req *r)
{
	curl_easy_cleanup(r->h);
	curl_slist_free_all(r->hdr);
	r->h = NULL;
	r->hdr = NULL;
}

static void base_url(const char *ip, int32_t port, char *buf, size_t len)
{
	snprintf(buf, len, strchr(ip, ':') ? "http://[%s]:%d" : "http://%s:%d", ip, port);
}

int warmup_probe(const char *ip, const struct warmup_plan *p, struct warmup_result *res)
{
	char base[128], url[1024];
	struct req r;
	long code = 0;

	memset(res, 0, sizeof(*res));
	base_url(ip, p->port, base, sizeof(base));
	snprintf(url, sizeof(url), "%s%s", base, p->health_path);
	if (!new_request(url, NULL, 3000, &r))
		return -ENOMEM;
	CURLcode cc = curl_easy_perform(r.h);
	curl_easy_getinfo(r.h, CURLINFO_RESPONSE_CODE, &code);
	end_request(&r);
	if (cc == CURLE_OK && code == 200)
		return 0;
	if (cc == CURLE_OK)
		snprintf(res->error, sizeof(res->error), "%.100s answered %ld", p->health_path, code);
	else
		snprintf(res->error, sizeof(res->error), "%.100s: %.100s", p->health_path,
			 curl_easy_strerror(cc));
	return -EAGAIN;
}

/* WARMING: the requests, `concurrency` in flight at a time. */
static int send_requests(const char *base, const struct warmup_plan *p, uint64_t deadline,
			 struct warmup_result *res)
{
	char url[1024];
	CURLM *m = curl_multi_init();
	struct req *reqs = calloc((size_t)p->concurrency, sizeof(*reqs));
	int started = 0, running = 0, in_flight = 0;
	long last_code = 0;

	if (!m || !reqs) {
		curl_multi_cleanup(m);
		free(reqs);
		return -ENOMEM;
	}
	snprintf(url, sizeof(url), "%s%s", base, p->path);
	while ((started < p->requests || in_flight > 0) && monotonic_ns() < deadline) {
		for (int i = 0; i < p->concurrency && started < p->requests; i++) {
			if (reqs[i].h)
				continue;
			long left = (long)((deadline - monotonic_ns()) / 1000000);
			long t = (long)p->request_timeout_s * 1000;
			if (left < t)
				t = left > 1 ? left : 1;
			if (!new_request(url, p->body, t, &reqs[i]))
				break;
			curl_multi_add_handle(m, reqs[i].h);
			started++;
			in_flight++;
		}
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int q;
		while ((msg = curl_multi_info_read(m, &q))) {
			struct req *r = NULL;
			double t = 0;
			long code = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &t);
			if (msg->data.result == CURLE_OK && code >= 200 && code < 300) {
				res->ok++;
			} else {
				res->failed++;
				last_code = code;
				if (msg->data.result == CURLE_OK)
					snprintf(res->error, sizeof(res->error), "%.100s answered %ld",
						 p->path, code);
				else
					snprintf(res->error, sizeof(res->error), "%.100s: %.100s", p->path,
						 curl_easy_strerror(msg->data.result));
			}
			if (t > res->max_latency_s)
				res->max_latency_s = t;
			curl_multi_remove_handle(m, msg->easy_handle);
			end_request(r);
			in_flight--;
		}
		if (in_flight > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (int i = 0; i < p->concurrency; i++)
		if (reqs[i].h) {
			curl_multi_remove_handle(m, reqs[i].h);
			end_request(&reqs[i]);
			res->failed++;
			snprintf(res->error, sizeof(res->error), "warm-up did not finish within %d s",
				 p->timeout_s);
		}
	curl_multi_cleanup(m);
	free(reqs);
	(void)last_code;
	if (res->ok < p->requests && !res->error[0])
		snprintf(res->error, sizeof(res->error), "warm-up did not finish within %d s",
			 p->timeout_s);
	return res->ok == p->requests ? 0 : -EIO;
}

int warmup_send(const char *ip, const struct warmup_plan *p, uint64_t deadline,
		struct warmup_result *res)
{
	char base[128];
	uint64_t t0 = monotonic_ns();
	int r = 0;

	memset(res, 0, sizeof(*res));
	base_url(ip, p->port, base, sizeof(base));
	if (p->requests > 0)
		r = send_requests(base, p, deadline, res);
	res->seconds = (double)(monotonic_ns() - t0) / 1e9;
	return r;
}

/* ---- the controller ------------------------------------------------------ */

struct pod_snap {
	char ns[64], name[256], uid[64], ip[64], service[256], reason[64];
	int32_t attempts;
	int64_t since, containers_since;
	bool gated, ready_containers, warm, deleting;
	char *spec_json;
};

static bool snap_pod(struct manager *m, const char *key, struct pod_snap *s)
{
	struct cache *pc = manager_cache(m, &kind_pods), *ic = manager_cache(m, &kind_inferenceservices);
	char ikey[512];
	bool ok = false;

	memset(s, 0, sizeof(*s));
	cache_read_lock();
	const struct kpod *p = (const struct kpod *)cache_get(pc, key);
	if (!p || !p->has_gate || !p->service)
		goto out;
	snprintf(s->ns, sizeof(s->ns), "%s", p->meta.ns);
	snprintf(s->name, sizeof(s->name), "%s", p->meta.name);
	snprintf(s->uid, sizeof(s->uid), "%s", p->meta.uid ? p->meta.uid : "");
	snprintf(s->ip, sizeof(s->ip), "%s", p->pod_ip ? p->pod_ip : "");
	snprintf(s->service, sizeof(s->service), "%s", p->service);
	snprintf(s->reason, sizeof(s->reason), "%s", p->warm_reason ? p->warm_reason : "");
	s->attempts = p->warmup_attempts;
	s->since = p->warm_since;
	s->containers_since = p->containers_ready_since;
	s->gated = true;
	s->ready_containers = p->containers_ready == KCOND_TRUE;
	s->warm = p->warmed == KCOND_TRUE;
	s->deleting = p->meta.deleted != 0;
	snprintf(ikey, sizeof(ikey), "%s/%s", s->ns, s->service);
	const struct isvc *is = (const struct isvc *)cache_get(ic, ikey);
	if (is && is->spec_json)
		s->spec_json = strdup(is->spec_json);
	ok = true;
out:
	cache_read_unlock();
	return ok;
}

static void pod_event(struct reconcile_ctx *ctx, const struct pod_snap *s, const char *type,
		      const char *reason, const char *note)
{
	kinfer_event(ctx, "v1", "Pod", s->ns, s->name, s->uid, type, reason, "WarmUp", note);
}

static int set_condition(struct reconcile_ctx *ctx, const struct pod_snap *s, bool ok,
			 const char *reason, const char *message)
{
	struct kube_status st;
	int r = podstate_set_gate(ctx->client, s->ns, s->name, ok, reason, message, &st);
	if (r < 0)
		snprintf(ctx->error, sizeof(ctx->error), "set %s on %s/%.200s: %.400s", KINFER_GATE,
			 s->ns, s->name, st.message);
	return r;
}

static int count_attempt(struct reconcile_ctx *ctx, const struct pod_snap *s, int attempts)
{
	char v[16];
	snprintf(v, sizeof(v), "%d", attempts);
	return podstate_annotate(ctx->client, s->ns, s->name, KINFER_WARMUP_ATTEMPTS, v, NULL);
}

static uint64_t retry_after_s(int attempts)
{
	uint64_t s = 10;
	for (int i = 1; i < attempts && s < 300; i++)
		s *= 2;
	return s > 300 ? 300 : s;
}

static enum reconcile_result reconcile(struct reconcile_ctx *ctx, const char *key)
{
	struct pod_snap s;
	struct warmup_plan plan;
	struct warmup_result res;
	char err[256], msg[512];
	enum reconcile_result out = RECONCILE_OK;

	if (!snap_pod(ctx->manager, key, &s) || s.deleting || s.warm ||
	    strcmp(s.reason, "Draining") == 0 || !s.ready_containers || !s.ip[0] || !s.spec_json)
		goto done;
	json_object *spec = json_tokener_parse(s.spec_json);
	int r = warmup_plan_from_spec(spec, &plan, err, sizeof(err));
	json_object_put(spec);
	if (r < 0) {
		set_condition(ctx, &s, false, "InvalidWarmup", err);
		goto done;
	}
	/* After a failure, wait out the backoff before the next attempt. */
	bool after_failure = strcmp(s.reason, "WarmupFailed") == 0;
	if (after_failure) {
		/* The condition alone decides: our two writes (condition, then the
		 * attempt count) reach the cache one at a time. */
		int64_t due = s.since + (int64_t)retry_after_s(s.attempts > 0 ? s.attempts : 1);
		int64_t now = (int64_t)time(NULL);
		if (now < due) {
			ctx->requeue_after_ns = (uint64_t)(due - now) * NSEC_PER_SEC;
			warmup_plan_free(&plan);
			out = RECONCILE_REQUEUE_AFTER;
			goto done;
		}
	}
	/*
	 * WAITING: one health probe per reconcile, never a long wait in a
	 * worker; the deadline counts from when the containers became ready
	 * (or from the last failed attempt), so it survives restarts.
	 */
	int64_t now = (int64_t)time(NULL);
	int64_t from = after_failure && s.since > s.containers_since ? s.since : s.containers_since;
	int64_t left = from > 0 ? from + plan.timeout_s - now : plan.timeout_s;
	r = left > 0 ? warmup_probe(s.ip, &plan, &res) : -ETIMEDOUT;
	if (r == -EAGAIN) {
		ctx->requeue_after_ns = 2 * NSEC_PER_SEC;
		warmup_plan_free(&plan);
		out = RECONCILE_REQUEUE_AFTER;
		goto done;
	}
	if (r == -ETIMEDOUT)
		snprintf(res.error, sizeof(res.error), "the model server was not healthy within %d s",
			 plan.timeout_s);
	else
		r = warmup_send(s.ip, &plan, monotonic_ns() + (uint64_t)left * NSEC_PER_SEC, &res);
	if (r == 0) {
		snprintf(msg, sizeof(msg), "%d warm-up request(s) answered in %.1f s (slowest %.0f ms)",
			 plan.requests, res.seconds, res.max_latency_s * 1000);
		if (set_condition(ctx, &s, true, plan.requests ? "WarmupSucceeded" : "NoWarmupRequests",
				  msg) < 0)
			out = RECONCILE_ERROR;
		else
			log_info("pod warm", "pod=%s/%s seconds=%.1f", s.ns, s.name, res.seconds);
		warmup_plan_free(&plan);
		goto done;
	}
	int attempts = s.attempts + 1;
	snprintf(msg, sizeof(msg), "attempt %d of %d failed: %s", attempts, plan.max_attempts, res.error);
	log_warn("warm-up failed", "pod=%s/%s attempt=%d error=%s", s.ns, s.name, attempts, res.error);
	pod_event(ctx, &s, "Warning", "WarmupFailed", msg);
	if (set_condition(ctx, &s, false, "WarmupFailed", msg) < 0 ||
	    count_attempt(ctx, &s, attempts) < 0) {
		out = RECONCILE_ERROR;
	} else if (attempts >= plan.max_attempts) {
		/* A model that will not warm: replace the pod. */
		struct kube_opts o = { .precondition_uid = s.uid };
		snprintf(msg, sizeof(msg), "deleting the pod after %d failed warm-up attempts", attempts);
		pod_event(ctx, &s, "Warning", "WarmupGaveUp", msg);
		kube_delete(ctx->client, &kube_res_pods, s.ns, s.name, &o, NULL, NULL);
	} else {
		ctx->requeue_after_ns = retry_after_s(attempts) * NSEC_PER_SEC;
		out = RECONCILE_REQUEUE_AFTER;
	}
	warmup_plan_free(&plan);
done:
	free(s.spec_json);
	return out;
}

static void pods_of_service(const struct cache_obj *o, controller_emit_fn emit, void *ud)
{
	(void)o;
	(void)emit;
	(void)ud;
	/* The pods' own events drive warm-up; a spec change rolls new pods. */
}

static const struct controller_watch watches[] = {
	{ &kind_pods, NULL },
	{ &kind_inferenceservices, pods_of_service },
};

const struct controller_def warmup_controller = {
	.name = "warmup",
	.watches = watches,
	.n_watches = sizeof(watches) / sizeof(watches[0]),
	.reconcile = reconcile,
	.workers = 8,
};
