/* session_filter.c - the outgoing filters of a session (session.h): every
 * stanza session_send() gets passes them, in order, before it is
 * serialized (XEP-0352's hold queue is one, core/features/csi.c; a Lua
 * module's util.filters another). */
#include "session.h"

#include <errno.h>
#include <stdlib.h>

static struct session_filter *filter_new(const struct session_filter_ops *ops,
					 void *data, struct session_filter *next)
{
	struct session_filter *f = xmalloc(sizeof(*f));

	f->ops = ops;
	f->data = data;
	f->next = next;
	return f;
}

void session_filter_add(struct session *s, const struct session_filter_ops *ops,
			void *data)
{
	struct session_filter **pp = &s->filters;

	while (*pp)
		pp = &(*pp)->next;
	*pp = filter_new(ops, data, NULL);
}

void session_filter_add_first(struct session *s, const struct session_filter_ops *ops,
			      void *data)
{
	s->filters = filter_new(ops, data, s->filters);
}

void *session_filter_data(const struct session *s,
			  const struct session_filter_ops *ops)
{
	for (struct session_filter *f = s->filters; f; f = f->next)
		if (f->ops == ops)
			return f->data;
	return NULL;
}

int session_filter_remove(struct session *s, const struct session_filter_ops *ops)
{
	for (struct session_filter **pp = &s->filters; *pp; pp = &(*pp)->next) {
		struct session_filter *f = *pp;
		if (f->ops != ops)
			continue;
		*pp = f->next;
		if (ops->detach)
			ops->detach(s, f->data);
		free(f);
		return 0;
	}
	return -ENOENT;
}
