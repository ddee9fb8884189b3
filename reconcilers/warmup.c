/*
 * The warm-up library: the plan read from a spec, the health probe and the
 * warm-up requests (curl multi, `concurrency` in flight), and the state
 * machine's one transition function. No API calls and no logging: the
 * warm-up controller (warmup_controller.c) drives it.
 */
#include "warmup.h"

#include "cache.h"
#include "isvc.h"
#include "presets.h"
#include "ratelimit.h"
#include "keys.h"
#include "ktime.h"
#include "text.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WARMUP_BODY_MAX (1 << 20)
#define HEALTH_TIMEOUT_MS 3000 /* the health probe before the warm-up requests */


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

int warmup_plan_from_spec(json_object *spec, struct warmup_plan *ret, char *err, size_t errlen)
{
	struct warmup_plan plan, *p = &plan;
	int r = 0;
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
	p->timeout_s = (int)cache_json_int(w, "timeoutSeconds", ISVC_WARMUP_TIMEOUT_S_DEFAULT);
	p->request_timeout_s = (int)cache_json_int(w, "requestTimeoutSeconds", 60);
	p->max_attempts = (int)cache_json_int(w, "maxAttempts", 3);
	if (p->concurrency < 1)
		p->concurrency = 1;
	const char *path = cache_json_str(w, "path");
	json_object *body = cache_json_get(w, "body");
	if (path) {
		snprintf(p->path, sizeof(p->path), "%s", path);
		if (body) {
			p->body = strdup(json_object_to_json_string_ext(
				body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			if (!p->body) {
				r = -ENOMEM;
				goto free_body;
			}
		}
	} else if (pr->warmup_path) {
		if (preset_expand(pr->warmup_path, "", model ? model : "", p->port, p->path,
				  sizeof(p->path)) < 0)
			return text_errf(err, errlen, -EINVAL,
					 "spec.model.name: too long for the warm-up path");
		if (pr->warmup_body && !(p->body = default_body(pr, model)))
			return -ENOMEM;
	} else if (p->requests > 0 && !w) {
		/* custom framework, no warm-up given: nothing to send. */
		p->requests = 0;
	} else if (p->requests > 0) {
		return text_errf(err, errlen, -EINVAL,
				 "spec.warmup.path: required for framework %s", pr->name);
	}
	if (p->port <= 0) {
		r = text_errf(err, errlen, -EINVAL, "spec.port: required for framework %s", pr->name);
		goto free_body;
	}
	*ret = plan;
	return 0;
free_body:
	free(p->body);
	return r;
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
	if (!new_request(url, NULL, HEALTH_TIMEOUT_MS, &r))
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
			 const atomic_bool *cancel, struct warmup_result *res)
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
	bool cancelled = false;
	while ((started < p->requests || in_flight > 0) && ktime_mono_ns() < deadline) {
		if (cancel && atomic_load(cancel)) {
			cancelled = true;
			break;
		}
		for (int i = 0; i < p->concurrency && started < p->requests; i++) {
			if (reqs[i].h)
				continue;
			long left = (long)((deadline - ktime_mono_ns()) / KTIME_NSEC_PER_MSEC);
			long t = (long)p->request_timeout_s * KTIME_MSEC_PER_SEC;
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
					snprintf(res->error, sizeof(res->error),
						 "%.100s answered %ld", p->path, code);
				else
					snprintf(res->error, sizeof(res->error), "%.100s: %.100s",
						 p->path, curl_easy_strerror(msg->data.result));
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
			snprintf(res->error, sizeof(res->error),
				 "warm-up did not finish within %d s", p->timeout_s);
		}
	curl_multi_cleanup(m);
	free(reqs);
	(void)last_code;
	if (cancelled) {
		snprintf(res->error, sizeof(res->error), "warm-up cancelled: kinfer is stopping");
		return -ECANCELED;
	}
	if (res->ok < p->requests && !res->error[0])
		snprintf(res->error, sizeof(res->error), "warm-up did not finish within %d s",
			 p->timeout_s);
	return res->ok == p->requests ? 0 : -EIO;
}

int warmup_plan_copy(const struct warmup_plan *p, struct warmup_plan *ret)
{
	struct warmup_plan c = *p;
	if (p->body && !(c.body = strdup(p->body)))
		return -ENOMEM;
	*ret = c;
	return 0;
}

int warmup_send(const char *ip, const struct warmup_plan *p, uint64_t deadline,
		const atomic_bool *cancel, struct warmup_result *res)
{
	char base[128];
	uint64_t t0 = ktime_mono_ns();
	int r = 0;

	memset(res, 0, sizeof(*res));
	base_url(ip, p->port, base, sizeof(base));
	if (p->requests > 0)
		r = send_requests(base, p, deadline, cancel, res);
	res->seconds = ktime_ns_to_s(ktime_mono_ns() - t0);
	return r;
}

/* ---- the state machine ---------------------------------------------------- */

enum warmup_state warmup_step(enum warmup_state st, enum warmup_event ev)
{
	switch (st) {
	case WARMUP_WAITING:
		if (ev == WARMUP_EV_HEALTHY)
			return WARMUP_WARMING;
		if (ev == WARMUP_EV_TIMED_OUT)
			return WARMUP_FAILED;
		return st;
	case WARMUP_WARMING:
		if (ev == WARMUP_EV_ANSWERED)
			return WARMUP_WARM;
		if (ev == WARMUP_EV_FAILED || ev == WARMUP_EV_TIMED_OUT)
			return WARMUP_FAILED;
		return st;
	case WARMUP_WARM:
	case WARMUP_FAILED:
		return st;
	}
	return st;
}

const char *warmup_state_name(enum warmup_state st)
{
	static const char *const names[] = { "Waiting", "Warming", "Warm", "Failed" };
	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "Unknown";
}

uint64_t warmup_retry_after_s(int attempts)
{
	uint64_t s = WARMUP_RETRY_FIRST_S;
	for (int i = 1; i < attempts && s < WARMUP_RETRY_MAX_S; i++)
		s *= 2;
	return s > WARMUP_RETRY_MAX_S ? WARMUP_RETRY_MAX_S : s;
}
