/*
 * lx_admin.h - Lua modules for administration tools. starlingctl preloads
 * them; the server does not, so modules cannot reach credentials or the
 * file system through them.
 *
 *   starling.accounts  (lx_accounts.c)  accounts with their SCRAM
 *                      credentials, for export and import
 *   starling.xmlfile   (lx_xmlfile.c)   reading XML files element by
 *                      element (XInclude included), serializing stanzas
 *                      for files
 */
#ifndef STARLING_LX_ADMIN_H
#define STARLING_LX_ADMIN_H

#include "lx.h"

int luaopen_starling_accounts(lua_State *L);
int luaopen_starling_xmlfile(lua_State *L);

#endif
