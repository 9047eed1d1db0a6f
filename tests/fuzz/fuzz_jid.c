/*
 * fuzz_jid.c - JID parsing and preparation (jid.c).
 *
 * Input: the JID's bytes (up to the first NUL, as a C string).
 *
 * Checks: when jid_parse() accepts it, each form jid_format() writes
 * (full, bare, domain) parses again to the same parts, formatting is
 * exact about its buffer (-ENOSPC at the length, success at length + 1),
 * and the prepared parts are fixed points of jid_nodeprep(),
 * jid_nameprep() and jid_resourceprep(). The three prep functions are also
 * run on the raw input: what they accept, they accept again unchanged.
 */
#include "fuzz_common.h"
#include "jid.h"

#include <errno.h>

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define JF_FMT_MAX (3 * JID_PART_MAX + 2)

static bool jf_equal(const struct jid *a, const struct jid *b)
{
	return a->has_node == b->has_node &&
	       a->has_resource == b->has_resource &&
	       strcmp(a->node, b->node) == 0 &&
	       strcmp(a->domain, b->domain) == 0 &&
	       strcmp(a->resource, b->resource) == 0;
}

static void jf_report(const char *what, const char *in, const char *out)
{
	fprintf(stderr, "%s\n  input:  '%s'\n  output: '%s'\n", what, in, out);
}

/* jid in form formats, re-parses, and means the same. */
static void jf_form(const struct jid *j, enum jid_form form, char *buf,
		    char *small)
{
	struct jid again, want = *j;
	int len = jid_format(j, form, buf, JF_FMT_MAX);

	FUZZ_CHECK(len > 0 && (size_t)len == strlen(buf));
	FUZZ_CHECK(jid_format(j, form, small, (size_t)len) == -ENOSPC);
	FUZZ_CHECK(small[0] == '\0');
	FUZZ_CHECK(jid_format(j, form, small, (size_t)len + 1) == len);
	FUZZ_CHECK(strcmp(small, buf) == 0);
	if (form != JID_FULL) {
		want.has_resource = false;
		want.resource[0] = '\0';
	}
	if (form == JID_DOMAIN) {
		want.has_node = false;
		want.node[0] = '\0';
	}
	if (jid_parse(buf, &again) != 0 || !jf_equal(&again, &want)) {
		jf_report("formatted JID does not parse to itself", buf,
			  again.domain);
		FUZZ_CHECK(!"round trip");
	}
}

/* prep(s) succeeds or fails; when it succeeds, prep(prep(s)) is the same. */
static void jf_prep(int (*prep)(const char *, char *), const char *name,
		    const char *s, char *out, char *again)
{
	if (prep(s, out) != 0)
		return;
	FUZZ_CHECK(out[0] != '\0' && strlen(out) < JID_PART_MAX);
	if (prep(out, again) != 0 || strcmp(out, again) != 0) {
		jf_report(name, out, again);
		FUZZ_CHECK(!"preparation is not idempotent");
	}
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static char buf[JF_FMT_MAX], small[JF_FMT_MAX];
	static char out[JID_PART_MAX], again[JID_PART_MAX];
	static struct jid j;
	char *s;

	fuzz_quiet_log();
	s = xstrndup((const char *)data, size);
	if (jid_parse(s, &j) == 0) {
		FUZZ_CHECK(j.domain[0] != '\0');
		FUZZ_CHECK(j.has_node == (j.node[0] != '\0'));
		FUZZ_CHECK(j.has_resource == (j.resource[0] != '\0'));
		jf_form(&j, JID_FULL, buf, small);
		jf_form(&j, JID_BARE, buf, small);
		jf_form(&j, JID_DOMAIN, buf, small);
		if (j.has_node)
			jf_prep(jid_nodeprep, "nodeprep", j.node, out, again);
		jf_prep(jid_nameprep, "nameprep", j.domain, out, again);
		if (j.has_resource)
			jf_prep(jid_resourceprep, "resourceprep", j.resource,
				out, again);
	} else {
		FUZZ_CHECK(j.domain[0] == '\0' && !j.has_node &&
			   !j.has_resource);
	}
	jf_prep(jid_nodeprep, "nodeprep", s, out, again);
	jf_prep(jid_nameprep, "nameprep", s, out, again);
	jf_prep(jid_resourceprep, "resourceprep", s, out, again);
	free(s);
	return 0;
}
