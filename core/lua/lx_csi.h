/*
 * lx_csi.h - "starling.csi" for mod_csi: the policy object of XEP-0352's
 * hold queue (core/features/csi.h) as a userdata.
 *
 *   csi.policy{ "urn:xmpp:omemo:2", ... }   the payloads that matter
 */
#ifndef STARLING_LX_CSI_H
#define STARLING_LX_CSI_H

#include "lx.h"

struct csi_policy;

/* The policy at idx (raises when it is not one); borrowed. */
struct csi_policy *lx_csi_check_policy(lua_State *L, int idx);
int luaopen_starling_csi(lua_State *L);

#endif
