/*
 * value.h - the stored-value encoding, the part C code needs without Lua:
 * a stanza held in C encoded as the bytes core/lua/lx_value.c's
 * value_encode gives for it.
 */
#ifndef STARLING_VALUE_H
#define STARLING_VALUE_H

#include "util.h"

struct st_node;

int value_encode_stanza(const struct st_node *n, struct sbuf *out);

#endif
