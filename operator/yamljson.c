/*
 * YAML -> json-c via libyaml's event API. A small explicit stack of open
 * containers replaces recursion, so depth is a counter we bound. Anchors
 * are kept in a short list and aliases share the anchored object by
 * reference count (no copy, no expansion).
 */
#include "yamljson.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct frame {
	json_object *obj; /* object or array */
	char *key;        /* pending key when obj is a mapping */
	bool expect_key;
	char *anchor;
};

struct anchor {
	char *name;
	json_object *obj;
};

struct parser {
	yaml_parser_t yp;
	struct frame stack[YAMLJSON_MAX_DEPTH + 1];
	int depth;
	struct anchor *anchors;
	size_t n_anchors, cap_anchors;
	size_t nodes, aliases;
	json_object *root;
	bool have_root;
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, const yaml_mark_t *m, int r, const char *what)
{
	if (p->err && p->errlen)
		snprintf(p->err, p->errlen, "line %zu column %zu: %s", m->line + 1, m->column + 1,
			 what);
	return r;
}

static bool match_int(const char *s, size_t len)
{
	size_t i = 0;
	if (len == 0)
		return false;
	if (s[0] == '-' || s[0] == '+')
		i++;
	if (i == len)
		return false;
	for (; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool match_float(const char *s, size_t len)
{
	size_t i = 0;
	bool digits = false, dot = false;
	if (len == 0)
		return false;
	if (s[i] == '-' || s[i] == '+')
		i++;
	for (; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digits = true;
		else if (s[i] == '.' && !dot)
			dot = true;
		else
			return false;
	}
	if (!digits)
		return false;
	/* An exponent is a signed integer after the e. */
	return i == len || match_int(s + i + 1, len - i - 1);
}

static bool eq(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

json_object *yamljson_plain_scalar(const char *s, size_t len, int *is_null)
{
	*is_null = 0;
	if (len == 0 || eq(s, len, "~") || eq(s, len, "null") || eq(s, len, "Null") ||
	    eq(s, len, "NULL")) {
		*is_null = 1;
		return NULL;
	}
	if (eq(s, len, "true") || eq(s, len, "True") || eq(s, len, "TRUE"))
		return json_object_new_boolean(1);
	if (eq(s, len, "false") || eq(s, len, "False") || eq(s, len, "FALSE"))
		return json_object_new_boolean(0);
	if (match_int(s, len) && len < 20) {
		char tmp[24];
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		return json_object_new_int64(strtoll(tmp, NULL, 10));
	}
	if ((match_float(s, len) || match_int(s, len)) && len < 64) {
		char tmp[72];
		memcpy(tmp, s, len);
		tmp[len] = '\0';
		return json_object_new_double(strtod(tmp, NULL));
	}
	if (eq(s, len, ".inf") || eq(s, len, "+.inf") || eq(s, len, ".Inf"))
		return json_object_new_double(INFINITY);
	if (eq(s, len, "-.inf") || eq(s, len, "-.Inf"))
		return json_object_new_double(-INFINITY);
	if (eq(s, len, ".nan") || eq(s, len, ".NaN"))
		return json_object_new_double(NAN);
	return json_object_new_string_len(s, (int)len);
}

static int remember_anchor(struct parser *p, const char *name, json_object *obj)
{
	if (!name)
		return 0;
	if (p->n_anchors == p->cap_anchors) {
		size_t cap = p->cap_anchors ? p->cap_anchors * 2 : 8;
		struct anchor *a = realloc(p->anchors, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		p->anchors = a;
		p->cap_anchors = cap;
	}
	p->anchors[p->n_anchors].name = strdup(name);
	if (!p->anchors[p->n_anchors].name)
		return -ENOMEM;
	p->anchors[p->n_anchors].obj = json_object_get(obj);
	p->n_anchors++;
	return 0;
}

static void clear_anchors(struct parser *p)
{
	for (size_t i = 0; i < p->n_anchors; i++) {
		free(p->anchors[i].name);
		json_object_put(p->anchors[i].obj);
	}
	p->n_anchors = 0;
}

/* Attach a finished node (reference transferred) to the open container. */
static int attach(struct parser *p, json_object *node, const char *scalar_text, const yaml_mark_t *m)
{
	struct frame *f;

	if (++p->nodes > YAMLJSON_MAX_NODES) {
		json_object_put(node);
		return fail(p, m, -EINVAL, "document has too many nodes");
	}
	if (p->depth == 0) {
		p->root = node;
		p->have_root = true;
		return 0;
	}
	f = &p->stack[p->depth - 1];
	if (json_object_is_type(f->obj, json_type_array))
		return json_object_array_add(f->obj, node) < 0 ? -ENOMEM : 0;
	if (f->expect_key) {
		const char *k = scalar_text;
		if (!k) {
			json_object_put(node);
			return fail(p, m, -EINVAL, "mapping keys must be scalars");
		}
		f->key = strdup(k);
		json_object_put(node);
		if (!f->key)
			return -ENOMEM;
		f->expect_key = false;
		return 0;
	}
	json_object_object_add(f->obj, f->key, node);
	free(f->key);
	f->key = NULL;
	f->expect_key = true;
	return 0;
}

static int on_scalar(struct parser *p, yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	json_object *node;
	int is_null = 0, r;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;

	if (plain && !ev->data.scalar.tag)
		node = yamljson_plain_scalar(v, len, &is_null);
	else
		node = json_object_new_string_len(v, (int)len);
	if (!node && !is_null)
		return -ENOMEM;
	r = remember_anchor(p, (const char *)ev->data.scalar.anchor, node);
	if (r < 0) {
		json_object_put(node);
		return r;
	}
	return attach(p, node, v, &ev->start_mark);
}

static int on_alias(struct parser *p, yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	if (++p->aliases > YAMLJSON_MAX_ALIASES)
		return fail(p, &ev->start_mark, -EINVAL, "too many aliases");
	for (size_t i = p->n_anchors; i-- > 0;)
		if (strcmp(p->anchors[i].name, name) == 0) {
			json_object *o = json_object_get(p->anchors[i].obj);
			const char *text = json_object_is_type(o, json_type_string) ?
						   json_object_get_string(o) :
						   NULL;
			return attach(p, o, text, &ev->start_mark);
		}
	return fail(p, &ev->start_mark, -EINVAL, "unknown alias");
}

static int open_container(struct parser *p, yaml_event_t *ev, bool mapping)
{
	const yaml_char_t *anchor = mapping ? ev->data.mapping_start.anchor :
					      ev->data.sequence_start.anchor;
	struct frame *f;

	if (p->depth > 0 && !json_object_is_type(p->stack[p->depth - 1].obj, json_type_array) &&
	    p->stack[p->depth - 1].expect_key)
		return fail(p, &ev->start_mark, -EINVAL, "mapping keys must be scalars");
	if (p->depth >= YAMLJSON_MAX_DEPTH)
		return fail(p, &ev->start_mark, -EINVAL, "nesting too deep");
	f = &p->stack[p->depth++];
	memset(f, 0, sizeof(*f));
	f->obj = mapping ? json_object_new_object() : json_object_new_array();
	if (!f->obj) {
		p->depth--;
		return -ENOMEM;
	}
	f->expect_key = mapping;
	if (anchor) {
		f->anchor = strdup((const char *)anchor);
		if (!f->anchor)
			return -ENOMEM;
	}
	return 0;
}

static int close_container(struct parser *p, yaml_event_t *ev)
{
	struct frame *f = &p->stack[--p->depth];
	json_object *obj = f->obj;
	int r = 0;

	free(f->key);
	if (f->anchor) {
		r = remember_anchor(p, f->anchor, obj);
		free(f->anchor);
	}
	f->obj = NULL;
	if (r < 0) {
		json_object_put(obj);
		return r;
	}
	return attach(p, obj, NULL, &ev->start_mark);
}

static void unwind(struct parser *p)
{
	while (p->depth > 0) {
		struct frame *f = &p->stack[--p->depth];
		json_object_put(f->obj);
		free(f->key);
		free(f->anchor);
	}
	json_object_put(p->root);
	p->root = NULL;
	p->have_root = false;
}

int yamljson_parse(const char *buf, size_t len, yamljson_doc_fn fn, void *userdata, char *err,
		   size_t errlen)
{
	struct parser p = { .err = err, .errlen = errlen };
	int r = 0, doc_line = 1;
	bool done = false;

	if (err && errlen)
		err[0] = '\0';
	if (!yaml_parser_initialize(&p.yp))
		return -ENOMEM;
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)buf, len);
	while (!done && r >= 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p.yp, &ev)) {
			r = fail(&p, &p.yp.problem_mark, -EINVAL,
				 p.yp.problem ? p.yp.problem : "malformed YAML");
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			doc_line = (int)ev.start_mark.line + 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			r = fn(p.root, doc_line, userdata);
			json_object_put(p.root);
			p.root = NULL;
			p.have_root = false;
			clear_anchors(&p);
			break;
		case YAML_SCALAR_EVENT:
			r = on_scalar(&p, &ev);
			break;
		case YAML_ALIAS_EVENT:
			r = on_alias(&p, &ev);
			break;
		case YAML_MAPPING_START_EVENT:
			r = open_container(&p, &ev, true);
			break;
		case YAML_SEQUENCE_START_EVENT:
			r = open_container(&p, &ev, false);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			r = close_container(&p, &ev);
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	unwind(&p);
	clear_anchors(&p);
	free(p.anchors);
	yaml_parser_delete(&p.yp);
	return r < 0 ? r : 0;
}

struct first_doc {
	json_object *doc;
	bool seen;
};

static int keep_first(json_object *doc, int line, void *userdata)
{
	struct first_doc *f = userdata;
	(void)line;
	if (!f->seen) {
		f->doc = json_object_get(doc);
		f->seen = true;
	}
	return 0;
}

int yamljson_parse_one(const char *buf, size_t len, json_object **ret_doc, char *err, size_t errlen)
{
	struct first_doc f = { 0 };
	int r = yamljson_parse(buf, len, keep_first, &f, err, errlen);
	if (r < 0) {
		json_object_put(f.doc);
		return r;
	}
	*ret_doc = f.doc;
	return 0;
}
