/*
 * gate.h - the "nothing to do" answer of a Lua handler, decided in C:
 * a gate in front of a Lua handler lets a firing pass without entering
 * Lua when no account the handler could act for needs it.
 *
 * side:     which accounts of an event a gate looks at: the origin
 *           session's (or event.account's when a module sends for an
 *           account without a session), the account a stanza's 'to' names, the account
 *           its 'from' names (each only when it is an account of one of
 *           our hosts).
 * open:     the handler is called; a gate opens when one of its sides'
 *           accounts
 *   RECORD  has a record in a keyval store (mod_blocklist's lists,
 *           mod_cloud_notify's registrations: most accounts have none),
 *           is an account of another of our hosts than the store's, or
 *           its record cannot be read;
 *   CARBONS has a session that enabled carbons (SESS_F_CARBONS);
 *   QUOTA   has an archive whose usage this process does not know yet,
 *           or that holds more than the limits (mod_mam's quota).
 *
 * A gate decides only what the handler would decide itself at once, and
 * reads storage the handler would read: the handler behaves as before,
 * it is just not entered when it would return nil without doing
 * anything. Storage is read each time (no cache here), so a change made
 * by another process or node counts at once.
 */
#ifndef STARLING_GATE_H
#define STARLING_GATE_H

#include "hooks.h"
#include "store.h"

#include <stdint.h>

#define GATE_ORIGIN 0x1
#define GATE_TO     0x2
#define GATE_FROM   0x4

enum gate_kind { GATE_RECORD, GATE_CARBONS, GATE_QUOTA };

struct gate {
	enum gate_kind kind;
	unsigned sides;			/* GATE_* */
	struct store st;		/* RECORD: keyval, QUOTA: archive */
	char *host, *name;		/* st's, owned */
	uint64_t max_items, max_bytes;	/* QUOTA: 0 is no limit */
};

/* Fills g for kind and sides; st (RECORD, QUOTA; copied) may be NULL
 * for CARBONS. */
void gate_init(struct gate *g, enum gate_kind kind, unsigned sides,
	       const struct store *st);
void gate_deinit(struct gate *g);

/* Whether the handler behind g must run for ev. */
bool gate_open(const struct gate *g, const struct event *ev);

#endif
