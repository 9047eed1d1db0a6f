/*
 * lx_session.h - sessions as Lua sees them: userdata "starling.session".
 *
 * One userdata per session for its whole life (kept in the registry while
 * the session lives), with a table of module-set fields as its user value
 * (s.presence, s.priority, ...). When the session ends the userdata stays
 * valid for Lua but reports s.closed = true and sends nothing.
 */
#ifndef STARLING_LX_SESSION_H
#define STARLING_LX_SESSION_H

#include "lx.h"

struct session;

void lx_session_push(lua_State *L, struct session *s);
/* The session of the userdata at idx, or NULL when closed; raises when
 * idx is not a session. */
struct session *lx_session_check(lua_State *L, int idx);
void lx_session_detach(struct session *s);
/* Fires event on the session's host with { session = s }. */
void lx_session_fire(struct session *s, const char *event);
/* Fires "stream-features" with { origin = s, features = features }. */
void lx_session_fire_features(struct session *s, struct st_doc *d,
			      struct st_node *features);
/* An iq from a session that has not authenticated: fires
 * "pre-auth/iq-<type>/<xmlns>:<name>" with { origin, stanza }. True when
 * a handler took it. */
bool lx_session_fire_preauth(struct session *s, struct st_doc *doc,
			     struct st_node *child);
/* A top-level element in another namespace than jabber:client after
 * authentication: fires "stream-element/<xmlns>:<name>" with
 * { origin, stanza }. True when a handler took it. */
bool lx_session_fire_element(struct session *s, struct st_doc *doc);
/* The session ended with stanzas the client never acked (XEP-0198):
 * fires "smacks-unacked" with { session, stanzas = {...} }; takes the
 * docs and the array. */
void lx_session_fire_unacked(struct session *s, struct st_doc **docs,
			     size_t n);
void lx_session_register(lua_State *L);

#endif
