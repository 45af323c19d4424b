/* Whether the device logger traces, asked per C call and kept between calls while nothing it depends on changed.
 *
 * The rule is the logger's own: `logger.isEnabledFor(TRACE)` (the Python path asks the same). Asking it is a
 * Python call, ~35 ns warm and ~90 ns after a sleep on the doorbell, twice per round trip. Its answer, for a
 * logging.Logger whose isEnabledFor and getEffectiveLevel are logging's, depends only on the attributes in the
 * instance dicts of the logger and its ancestors (`disabled`, `level`, `parent`), on the manager's `disable`, and
 * on the classes. So the answer is kept with the version of each of those dicts (PEP 509's ma_version_tag, which
 * every change of a dict moves) and each class's version tag (which any change of a class or a base resets), and
 * asked again as soon as one of them moved. Anything else (another callable, a logger subclass, an instance that
 * overrides a method, Python >= 3.12 where the dict version is deprecated) is asked at every call.
 */
#ifndef RPROC_RPMSG_ENDPOINT_TRACE_H
#define RPROC_RPMSG_ENDPOINT_TRACE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define TRACE_DEPS 8 /* dicts kept: the logger, its ancestors, the manager (deeper chains are asked each time) */

struct trace_cache {
	PyObject *ask;   /* the logger's isEnabledFor (a bound method), asked with `level` */
	PyObject *level; /* an int */
	int known;       /* `tracing` holds while every dict and class below is unchanged */
	int tracing;
	int ndicts, ntypes;
	PyObject *dicts[TRACE_DEPS];
	uint64_t versions[TRACE_DEPS];
	PyTypeObject *types[TRACE_DEPS];
	unsigned int tags[TRACE_DEPS];
};

/* Take `ask` and `level` (new references); forget what was known. */
void trace_set(struct trace_cache *t, PyObject *ask, PyObject *level);
void trace_clear(struct trace_cache *t);
int trace_traverse(struct trace_cache *t, visitproc visit, void *arg);
/* 1 if the logger says it does not trace (isEnabledFor returned False); 0 otherwise, an error included (the
 * Python path then asks the logger itself). */
int trace_off(struct trace_cache *t);

#endif /* RPROC_RPMSG_ENDPOINT_TRACE_H */
