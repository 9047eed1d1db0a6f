/*
 * jid.h - XMPP addresses (RFC 7622): localpart@domainpart/resourcepart.
 *
 * Preparation uses libidn's stringprep profiles (Nodeprep, Nameprep,
 * Resourceprep of RFC 6122, which RFC 7622 section 3.x allows as the
 * transitional form): never hand-made tables. Each part is at most 1023
 * bytes after preparation; the domain may not be empty.
 */
#ifndef STARLING_JID_H
#define STARLING_JID_H

#include "util.h"

#define JID_PART_MAX 1024

struct jid {
	char node[JID_PART_MAX];	/* "" when absent */
	char domain[JID_PART_MAX];
	char resource[JID_PART_MAX];	/* "" when absent */
	bool has_node;
	bool has_resource;
};

/* Splits and prepares s: 0 or -EINVAL (malformed, prohibited character,
 * empty part, too long). */
int jid_parse(const char *s, struct jid *j);

/* One part of a split string: [p, p + len), absent when p is NULL. */
struct jid_span {
	const char *p;
	size_t len;
};

/* Splits s without preparing it, as Prosody does: a non-empty node
 * before an '@' that comes before any '/', a non-empty host with neither
 * '@' nor '/', and after a '/' a non-empty resource (anything). False
 * when s is not of that shape. */
bool jid_split_raw(const char *s, size_t len, struct jid_span *node,
		   struct jid_span *host, struct jid_span *res);

enum jid_form { JID_FULL, JID_BARE, JID_DOMAIN };
/* Writes the JID in the given form to out (NUL-terminated; truncated
 * results are an error): the length, or -ENOSPC. */
int jid_format(const struct jid *j, enum jid_form form, char *out, size_t n);

/* Prepares one part into out (size JID_PART_MAX): 0 or -EINVAL. */
int jid_nodeprep(const char *in, char *out);
int jid_nameprep(const char *in, char *out);
int jid_resourceprep(const char *in, char *out);

#endif
