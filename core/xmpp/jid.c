/*
 * jid.c - splitting and preparing JIDs (RFC 7622, with the stringprep
 * profiles of RFC 6122 from libidn).
 *
 * Splitting: the first '/' starts the resourcepart (which may hold more
 * '/' and '@'); the first '@' before it ends the localpart.
 *
 * Domainparts: IDNA label separators (U+3002, U+FF0E, U+FF61) become '.',
 * one trailing dot is stripped, an IPv4 address or a bracketed IPv6
 * address is kept as it is (lowercased), anything else is nameprepped
 * and must convert to ASCII under IDNA with the STD3 host name rules.
 * The prepared form keeps U-labels (what the client wrote, folded).
 */
#include "jid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <idna.h>
#include <stringprep.h>

/* A part before preparation may shrink (mapped-out characters), but
 * nothing longer than this can be worth the work of preparing. */
#define JID_RAW_MAX (4 * JID_PART_MAX)

static void jid_clear(struct jid *j)
{
	j->node[0] = j->domain[0] = j->resource[0] = '\0';
	j->has_node = j->has_resource = false;
}

/* Copies a prepared result into out when 1..1023 bytes: 0 or -EINVAL. */
static int part_store(const char *res, char *out)
{
	size_t len = strlen(res);

	if (len == 0 || len >= JID_PART_MAX)
		return -EINVAL;
	memcpy(out, res, len + 1);
	return 0;
}

/* Printable ASCII needs none of stringprep's tables: Nodeprep only folds
 * A-Z and prohibits space and "&'/:<>@; Resourceprep leaves it as it is.
 * 1 when handled (0 or -EINVAL in *rc), 0 to take the full path. */
static int prep_ascii(const char *in, size_t n, bool node, char *out, int *rc)
{
	if (n >= JID_PART_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c > 0x7e)
			return 0;
		if (node && (c == ' ' || c == '"' || c == '&' || c == '\'' ||
			     c == '/' || c == ':' || c == '<' || c == '>' || c == '@')) {
			*rc = -EINVAL;
			return 1;
		}
		out[i] = (char)(node && c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	out[n] = '\0';
	*rc = 0;
	return 1;
}

static int prep_part(const char *in, size_t n, const char *profile,
		     char *out)
{
	char *tmp, *res = NULL;
	int rc;

	if (n == 0 || n > JID_RAW_MAX)
		return -EINVAL;
	if (prep_ascii(in, n, profile[0] == 'N', out, &rc))
		return rc;
	tmp = xstrndup(in, n);
	rc = stringprep_profile(tmp, &res, profile, 0);
	free(tmp);
	if (rc != STRINGPREP_OK) {
		free(res);
		return -EINVAL;
	}
	rc = part_store(res, out);
	free(res);
	return rc;
}

/* "[" IPv6address "]": kept, lowercased. */
static int domain_ipv6(const char *d, size_t n, char *out)
{
	char inner[INET6_ADDRSTRLEN + 1];
	unsigned char addr[16];

	if (n < 4 || n - 2 > INET6_ADDRSTRLEN || d[n - 1] != ']')
		return -EINVAL;
	memcpy(inner, d + 1, n - 2);
	inner[n - 2] = '\0';
	if (inet_pton(AF_INET6, inner, addr) != 1)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		out[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] + 32) : d[i];
	out[n] = '\0';
	return 0;
}

/* Nameprep of one label [p, p + n) appended to out: 0 or -EINVAL. A
 * label must not vanish or turn into more than one. */
static int label_prep(const char *p, size_t n, struct sbuf *out)
{
	char *tmp, *res = NULL;
	int rc = -EINVAL;

	if (n == 0)
		return -EINVAL;
	tmp = xstrndup(p, n);
	if (stringprep_profile(tmp, &res, "Nameprep", 0) == STRINGPREP_OK &&
	    res[0] != '\0' && !strchr(res, '.')) {
		sbuf_adds(out, res);
		rc = 0;
	}
	free(tmp);
	free(res);
	return rc;
}

/* A host name: nameprep label by label (bidi rules hold per label),
 * then it must pass IDNA ToASCII (labels of 1..63 octets, letters,
 * digits and hyphens, no hyphen at either end). */
static int domain_name(const char *d, char *out)
{
	struct sbuf prepped;
	char *ascii = NULL;
	const char *p = d, *dot;
	int rc;

	sbuf_init(&prepped);
	for (;;) {
		dot = strchr(p, '.');
		rc = label_prep(p, dot ? (size_t)(dot - p) : strlen(p),
				&prepped);
		if (rc < 0 || !dot)
			break;
		sbuf_addc(&prepped, '.');
		p = dot + 1;
	}
	if (rc < 0)
		goto out;
	rc = -EINVAL;
	if (idna_to_ascii_8z(prepped.p, &ascii, IDNA_ALLOW_UNASSIGNED |
			     IDNA_USE_STD3_ASCII_RULES) != IDNA_SUCCESS)
		goto out;
	rc = part_store(prepped.p, out);
out:
	free(ascii);
	sbuf_free(&prepped);
	return rc;
}

/* U+3002, U+FF0E, U+FF61: label separators under IDNA. */
static bool is_wide_dot(const unsigned char *p, size_t left)
{
	if (left < 3)
		return false;
	return (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x82) ||
	       (p[0] == 0xef && p[1] == 0xbc && p[2] == 0x8e) ||
	       (p[0] == 0xef && p[1] == 0xbd && p[2] == 0xa1);
}

/* An ASCII host name that already follows the STD3 rules (labels of 1 to
 * 63 letters, digits and inner hyphens) only needs lowercasing: true when
 * done. Anything else takes the full path. */
static bool domain_ascii(const char *in, size_t n, char *out)
{
	size_t label = 0;

	if (n && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '.') {
			if (label == 0 || in[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			label++;
			c = (char)(c + 32);
		} else {
			return false;
		}
		if (label > 63)
			return false;
		out[i] = c;
	}
	if (label == 0 || in[n - 1] == '-')
		return false;
	out[n] = '\0';
	return true;
}

static int domain_prep(const char *in, size_t n, char *out)
{
	struct sbuf d;
	unsigned char v4[4];
	int rc = -EINVAL;

	if (n == 0 || n > JID_RAW_MAX || memchr(in, '\0', n))
		return -EINVAL;
	if (domain_ascii(in, n, out))
		return 0;
	sbuf_init(&d);
	for (size_t i = 0; i < n; i++) {
		if (is_wide_dot((const unsigned char *)in + i, n - i)) {
			sbuf_addc(&d, '.');
			i += 2;
		} else {
			sbuf_addc(&d, in[i]);
		}
	}
	if (d.p[d.len - 1] == '.')
		d.p[--d.len] = '\0';
	if (d.len == 0)
		goto out;
	if (d.p[0] == '[')
		rc = domain_ipv6(d.p, d.len, out);
	else if (inet_pton(AF_INET, d.p, v4) == 1)
		rc = part_store(d.p, out);
	else
		rc = domain_name(d.p, out);
out:
	sbuf_free(&d);
	return rc;
}

int jid_nodeprep(const char *in, char *out)
{
	return prep_part(in, strlen(in), "Nodeprep", out);
}

int jid_nameprep(const char *in, char *out)
{
	return domain_prep(in, strlen(in), out);
}

int jid_resourceprep(const char *in, char *out)
{
	return prep_part(in, strlen(in), "Resourceprep", out);
}

int jid_parse(const char *s, struct jid *j)
{
	size_t len = strlen(s);
	const char *end = s + len, *slash, *at, *dom;
	int rc;

	jid_clear(j);
	slash = memchr(s, '/', len);
	at = memchr(s, '@', (size_t)((slash ? slash : end) - s));
	dom = at ? at + 1 : s;
	if (at) {
		rc = prep_part(s, (size_t)(at - s), "Nodeprep", j->node);
		if (rc < 0)
			goto out;
		j->has_node = true;
	}
	rc = domain_prep(dom, (size_t)((slash ? slash : end) - dom),
			 j->domain);
	if (rc < 0)
		goto out;
	if (slash) {
		rc = prep_part(slash + 1, (size_t)(end - slash - 1),
			       "Resourceprep", j->resource);
		if (rc < 0)
			goto out;
		j->has_resource = true;
	}
out:
	if (rc < 0)
		jid_clear(j);
	return rc;
}

/* Appends the string s at out + *len when it fits in n with the NUL. */
static bool put(char *out, size_t n, size_t *len, const char *s)
{
	size_t k = strlen(s);

	if (*len + k >= n)
		return false;
	memcpy(out + *len, s, k);
	*len += k;
	return true;
}

/* Called for every routed stanza's 'to': no printf. */
int jid_format(const struct jid *j, enum jid_form form, char *out, size_t n)
{
	bool node = j->has_node && form != JID_DOMAIN;
	bool res = j->has_resource && form == JID_FULL;
	size_t len = 0;

	if ((node && (!put(out, n, &len, j->node) || !put(out, n, &len, "@"))) ||
	    !put(out, n, &len, j->domain) ||
	    (res && (!put(out, n, &len, "/") || !put(out, n, &len, j->resource)))) {
		if (n)
			out[0] = '\0';
		return -ENOSPC;
	}
	out[len] = '\0';
	return (int)len;
}

bool jid_split_raw(const char *s, size_t len, struct jid_span *node,
		   struct jid_span *host, struct jid_span *res)
{
	const char *end = s + len, *slash, *at, *h;

	node->p = host->p = res->p = NULL;
	node->len = host->len = res->len = 0;
	slash = memchr(s, '/', len);
	at = memchr(s, '@', (size_t)((slash ? slash : end) - s));
	h = at ? at + 1 : s;
	if (at) {
		if (at == s)
			return false;
		*node = (struct jid_span){ s, (size_t)(at - s) };
	}
	*host = (struct jid_span){ h, (size_t)((slash ? slash : end) - h) };
	if (host->len == 0 || memchr(host->p, '@', host->len))
		return false;
	if (slash) {
		if (slash + 1 == end)
			return false;
		*res = (struct jid_span){ slash + 1, (size_t)(end - slash - 1) };
	}
	return true;
}
