/*
 * The offline validator: files -> yamljson (multi-document, with each
 * document's line) -> admission_default -> admission_validate -> lines:
 *
 *   isvc.yaml:12: llm: ok (4 defaults)
 *   isvc.yaml:30: big: error: spec.resources.gpu.memory: 90Gi exceeds ...
 *   isvc.yaml:30: big: warning: spec.image: ... has no version tag ...
 *
 * Documents of other kinds are skipped (and said so), so a whole folder of
 * manifests can be checked.
 */
#include "validate.h"

#include "admission.h"
#include "cache.h"
#include "dynbuf.h"
#include "yamljson.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VALIDATE_MAX_FILE (16u << 20)
#define VALIDATE_MAX_FILES 10000

/* --strict, for the whole (single-threaded) command. */
static bool strict_mode;

struct run {
	bool strict; /* unknown fields are errors (--strict) */
	const char *name;
	const char *buf;
	size_t len;
	FILE *out;
	int worst; /* 0 ok, 1 failed, 2 unreadable */
	unsigned objects;
};

static void worse(struct run *r, int code)
{
	if (code > r->worst)
		r->worst = code;
}

/*
 * yamljson gives the line a document starts on, which for all but the first
 * is its "---". People want the object's first line: skip the marker, blank
 * lines and comments after it.
 */
static int content_line(const char *buf, size_t len, int line)
{
	size_t o = 0;
	int l = 1;
	while (o < len && l < line) {
		if (buf[o++] == '\n')
			l++;
	}
	for (int guard = 0; o < len && guard < 100000; guard++) {
		size_t e = o;
		while (e < len && buf[e] != '\n')
			e++;
		size_t p = o;
		while (p < e && (buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\r'))
			p++;
		bool skip = p == e || buf[p] == '#' ||
			    (e - p >= 3 && memcmp(buf + p, "---", 3) == 0 &&
			     (e - p == 3 || buf[p + 3] == ' ' || buf[p + 3] == '\r'));
		if (!skip)
			return l;
		o = e + 1;
		l++;
	}
	return line;
}

static int on_doc(json_object *doc, int line, void *ud)
{
	struct run *r = ud;
	struct admission_report *rep = NULL;
	json_object *patch = NULL;
	const char *kind, *name;

	if (!doc)
		return 0;
	line = content_line(r->buf, r->len, line);
	kind = cache_json_str(doc, "kind");
	name = cache_json_str(doc, "metadata.name");
	if (!name)
		name = "(no name)";
	if (!json_object_is_type(doc, json_type_object)) {
		fprintf(r->out, "%s:%d: error: not a YAML mapping (want an InferenceService)\n",
			r->name, line);
		worse(r, 1);
		return 0;
	}
	if (!kind || strcmp(kind, "InferenceService") != 0) {
		fprintf(r->out, "%s:%d: %s: skipped (kind %s)\n", r->name, line, name,
			kind ? kind : "missing");
		return 0;
	}
	r->objects++;
	if (admission_default(doc, &patch) < 0 || admission_report_new(&rep) < 0 ||
	    admission_validate_strict(doc, NULL, rep, r->strict) < 0) {
		json_object_put(patch);
		admission_report_free(rep);
		return -ENOMEM;
	}
	size_t ne = admission_report_n_errors(rep), nw = admission_report_n_warnings(rep);
	for (size_t i = 0; i < ne; i++)
		fprintf(r->out, "%s:%d: %s: error: %s\n", r->name, line, name,
			admission_report_error(rep, i));
	for (size_t i = 0; i < nw; i++)
		fprintf(r->out, "%s:%d: %s: warning: %s\n", r->name, line, name,
			admission_report_warning(rep, i));
	if (ne == 0)
		fprintf(r->out, "%s:%d: %s: ok (%zu defaults)\n", r->name, line, name,
			json_object_array_length(patch));
	else
		worse(r, 1);
	json_object_put(patch);
	admission_report_free(rep);
	return 0;
}

int validate_buffer(const char *name, const char *buf, size_t len, FILE *out)
{
	return validate_buffer_strict(name, buf, len, out, false);
}

int validate_buffer_strict(const char *name, const char *buf, size_t len, FILE *out, bool strict)
{
	struct run r = { .strict = strict, .name = name, .buf = buf, .len = len, .out = out };
	char err[512];
	int ret = yamljson_parse(buf, len, on_doc, &r, err, sizeof(err));
	if (ret == -ENOMEM) {
		fprintf(out, "%s: out of memory\n", name);
		return 2;
	}
	if (ret < 0) {
		fprintf(out, "%s: %s\n", name, err);
		return 2;
	}
	return r.worst;
}

/* The whole stream, NUL-terminated; -EFBIG when it holds VALIDATE_MAX_FILE
 * bytes or more. */
static int read_stream(FILE *f, char **ret, size_t *ret_len)
{
	struct dynbuf b;
	char chunk[65536];
	size_t n;
	int r = 0;

	dynbuf_init(&b, VALIDATE_MAX_FILE - 1);
	while (r == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		r = dynbuf_add(&b, chunk, n);
	if (r == 0 && ferror(f))
		r = -EIO;
	if (r == 0 && !b.p)
		r = dynbuf_add(&b, "", 0); /* an empty file is "" */
	if (r < 0) {
		dynbuf_free(&b);
		return r;
	}
	*ret = dynbuf_take(&b, ret_len);
	return 0;
}

static int check_file(const char *path, FILE *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	const char *name = f == stdin ? "<stdin>" : path;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (!f) {
		fprintf(out, "%s: cannot read: %s\n", path, strerror(errno));
		return 2;
	}
	r = read_stream(f, &buf, &len);
	if (f != stdin)
		fclose(f);
	if (r < 0) {
		fprintf(out, "%s: cannot read: %s\n", name,
			r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
		return 2;
	}
	r = validate_buffer_strict(name, buf, len, out, strict_mode);
	free(buf);
	return r;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool manifest_name(const char *n)
{
	size_t l = strlen(n);
	return n[0] != '.' && ((l > 5 && strcmp(n + l - 5, ".yaml") == 0) ||
			       (l > 4 && strcmp(n + l - 4, ".yml") == 0) ||
			       (l > 5 && strcmp(n + l - 5, ".json") == 0));
}

/* Every *.yaml, *.yml and *.json directly in dir, in name order. */
static int check_dir(const char *dir, FILE *out)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	int worst = 0;
	struct dirent *e;

	if (!d) {
		fprintf(out, "%s: cannot read: %s\n", dir, strerror(errno));
		return 2;
	}
	while ((e = readdir(d)) && n < VALIDATE_MAX_FILES) {
		if (!manifest_name(e->d_name))
			continue;
		char **nn = realloc(names, (n + 1) * sizeof(*names));
		if (!nn)
			break;
		names = nn;
		size_t l = strlen(dir) + strlen(e->d_name) + 2;
		if (!(names[n] = malloc(l)))
			break;
		snprintf(names[n], l, "%s/%s", dir, e->d_name);
		n++;
	}
	closedir(d);
	if (n == 0)
		fprintf(out, "%s: no *.yaml, *.yml or *.json files\n", dir);
	qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		int r = check_file(names[i], out);
		if (r > worst)
			worst = r;
		free(names[i]);
	}
	free(names);
	return n == 0 ? 2 : worst;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: kinfer-operator validate [--strict] -f FILE|DIR|- [-f ...]\n\n"
		"Apply the admission webhook's defaulting and validation to InferenceService\n"
		"manifests without a cluster, and the CRD's schema (types, enums, bounds;\n"
		"CEL rules stay the API server's). Multi-document YAML or JSON; a DIR means its\n"
		"*.yaml, *.yml and *.json files; - reads standard input. One line per result:\n"
		"  FILE:LINE: NAME: ok (N defaults) | error: FIELD: WHY | warning: FIELD: WHY\n"
		"A field the CRD does not define is a warning (the API server would drop it);\n"
		"with --strict an error, as kubectl apply --validate=strict.\n"
		"Exit status: 0 all pass, 1 any fails, 2 an input cannot be read or parsed.\n");
}

int validate_main(int argc, char **argv, int argi)
{
	const char *paths[256];
	size_t n = 0;
	int worst = 0;

	for (; argi < argc; argi++) {
		const char *a = argv[argi];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		const char *v = NULL;
		if (strcmp(a, "--strict") == 0) {
			strict_mode = true;
			continue;
		}
		if (strcmp(a, "-f") == 0 || strcmp(a, "--filename") == 0) {
			if (argi + 1 >= argc) {
				fprintf(stderr,
					"kinfer-operator validate: %s needs a file, folder or -\n",
					a);
				return 2;
			}
			v = argv[++argi];
		} else if (strncmp(a, "--filename=", 11) == 0) {
			v = a + 11;
		} else if (strncmp(a, "-f", 2) == 0 && a[2]) {
			v = a + 2;
		} else {
			fprintf(stderr,
				"kinfer-operator validate: unexpected argument \"%s\" (see --help)\n",
				a);
			return 2;
		}
		if (n >= sizeof(paths) / sizeof(paths[0])) {
			fprintf(stderr, "kinfer-operator validate: at most 256 -f\n");
			return 2;
		}
		paths[n++] = v;
	}
	if (n == 0) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int r = strcmp(paths[i], "-") != 0 && stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode) ?
				check_dir(paths[i], stdout) :
				check_file(paths[i], stdout);
		if (r > worst)
			worst = r;
	}
	fflush(stdout);
	return worst;
}
