/* Whether the device logger traces, kept between calls while nothing it depends on changed: see endpoint_trace.h. */
#include "endpoint_trace.h"

static void forget(struct trace_cache *t)
{
	t->known = 0;
	for (int i = 0; i < t->ndicts; i++)
		Py_CLEAR(t->dicts[i]);
	t->ndicts = t->ntypes = 0;
}

void trace_set(struct trace_cache *t, PyObject *ask, PyObject *level)
{
	trace_clear(t);
	t->ask = Py_NewRef(ask);
	t->level = Py_NewRef(level);
}

void trace_clear(struct trace_cache *t)
{
	forget(t);
	Py_CLEAR(t->ask);
	Py_CLEAR(t->level);
}

int trace_traverse(struct trace_cache *t, visitproc visit, void *arg)
{
	Py_VISIT(t->ask);
	Py_VISIT(t->level);
	for (int i = 0; i < t->ndicts; i++)
		Py_VISIT(t->dicts[i]);
	return 0;
}

#if PY_VERSION_HEX < 0x030C0000
/* logging's classes and the two methods the kept answer relies on, as logging.Logger had them when first asked
 * (a later change of the class moves its version tag, and the methods are compared again). */
static PyTypeObject *logger_type, *root_type, *manager_type;
static PyObject *stock_enabled, *stock_effective, *s_enabled, *s_effective, *s_parent, *s_manager;

static int load_stock(void)
{
	if (stock_effective)
		return 0;
	PyObject *logging = PyImport_ImportModule("logging");
	if (!logging)
		return -1;
	PyObject *lt = PyObject_GetAttrString(logging, "Logger");
	PyObject *rt = lt ? PyObject_GetAttrString(logging, "RootLogger") : NULL;
	PyObject *mt = rt ? PyObject_GetAttrString(logging, "Manager") : NULL;
	Py_DECREF(logging);
	if (!mt || !PyType_Check(lt) || !PyType_Check(rt) || !PyType_Check(mt)) {
		Py_XDECREF(lt);
		Py_XDECREF(rt);
		Py_XDECREF(mt);
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "logging.Logger, RootLogger, Manager are not classes");
		return -1;
	}
	s_enabled = PyUnicode_InternFromString("isEnabledFor");
	s_effective = PyUnicode_InternFromString("getEffectiveLevel");
	s_parent = PyUnicode_InternFromString("parent");
	s_manager = PyUnicode_InternFromString("manager");
	PyObject *enabled = s_manager ? PyObject_GetAttr(lt, s_enabled) : NULL;
	PyObject *effective = enabled ? PyObject_GetAttr(lt, s_effective) : NULL;
	if (!effective) {
		Py_XDECREF(enabled);
		Py_DECREF(lt);
		Py_DECREF(rt);
		Py_DECREF(mt);
		return -1;
	}
	logger_type = (PyTypeObject *)lt;
	root_type = (PyTypeObject *)rt;
	manager_type = (PyTypeObject *)mt;
	stock_enabled = enabled;
	stock_effective = effective;
	return 0;
}

/* Keep tp's version tag; for logging's logger classes only while their two methods are the stock ones. 0 when
 * it cannot be kept (a class of another kind, no tag). */
static int keep_type(struct trace_cache *t, PyTypeObject *tp)
{
	for (int i = 0; i < t->ntypes; i++)
		if (t->types[i] == tp)
			return 1;
	if (t->ntypes >= TRACE_DEPS)
		return 0;
	if (tp != manager_type) {
		if (tp != logger_type && tp != root_type)
			return 0;
		/* looking them up also gives the class a version tag, if it has none */
		PyObject *enabled = PyObject_GetAttr((PyObject *)tp, s_enabled);
		PyObject *effective = enabled ? PyObject_GetAttr((PyObject *)tp, s_effective) : NULL;
		int stock = enabled == stock_enabled && effective == stock_effective;
		Py_XDECREF(enabled);
		Py_XDECREF(effective);
		if (!stock)
			return 0;
	} else {
		PyObject *any = PyObject_GetAttr((PyObject *)tp, s_manager); /* a lookup: the tag */
		Py_XDECREF(any);
		PyErr_Clear();
	}
	if (!tp->tp_version_tag)
		return 0;
	t->types[t->ntypes] = tp;
	t->tags[t->ntypes++] = tp->tp_version_tag;
	return 1;
}

/* Keep obj's instance dict and its version; the dict (borrowed: kept), or NULL. */
static PyObject *keep_dict(struct trace_cache *t, PyObject *obj)
{
	if (t->ndicts >= TRACE_DEPS || !keep_type(t, Py_TYPE(obj)))
		return NULL;
	PyObject *dict = PyObject_GenericGetDict(obj, NULL);
	if (!dict || !PyDict_CheckExact(dict)) {
		Py_XDECREF(dict);
		return NULL;
	}
	/* an instance that overrides the methods asks its own */
	if (PyDict_GetItemWithError(dict, s_enabled) || PyDict_GetItemWithError(dict, s_effective)) {
		Py_DECREF(dict);
		return NULL;
	}
	t->dicts[t->ndicts] = dict;
	t->versions[t->ndicts++] = ((PyDictObject *)dict)->ma_version_tag;
	return dict;
}

/* After the logger answered `tracing`: keep it, with what it depends on, if it is logging's own answer. */
static void record(struct trace_cache *t, int tracing)
{
	forget(t);
	if (load_stock() < 0 || !PyMethod_Check(t->ask) || PyMethod_GET_FUNCTION(t->ask) != stock_enabled)
		goto fail;
	PyObject *obj = PyMethod_GET_SELF(t->ask);
	PyObject *manager = PyObject_GetAttr(obj, s_manager);
	if (!manager)
		goto fail;
	int kept = Py_TYPE(manager) == manager_type && keep_dict(t, manager);
	Py_DECREF(manager);
	if (!kept)
		goto fail;
	while (obj != Py_None) { /* the logger and its ancestors: getEffectiveLevel's walk */
		PyObject *dict = keep_dict(t, obj);
		obj = dict ? PyDict_GetItemWithError(dict, s_parent) : NULL;
		if (!obj)
			goto fail;
	}
	t->known = 1;
	t->tracing = tracing;
	return;
fail:
	PyErr_Clear();
	forget(t);
}

static int unchanged(const struct trace_cache *t)
{
	for (int i = 0; i < t->ndicts; i++)
		if (((PyDictObject *)t->dicts[i])->ma_version_tag != t->versions[i])
			return 0;
	for (int i = 0; i < t->ntypes; i++)
		if (t->types[i]->tp_version_tag != t->tags[i])
			return 0;
	return 1;
}
#endif

int trace_off(struct trace_cache *t)
{
	if (!t->ask)
		return 0;
#if PY_VERSION_HEX < 0x030C0000
	if (t->known && unchanged(t))
		return !t->tracing;
#endif
	PyObject *r = PyObject_Vectorcall(t->ask, &t->level, 1, NULL);
	if (!r) {
		PyErr_Clear();
		return 0;
	}
	int off = r == Py_False;
#if PY_VERSION_HEX < 0x030C0000
	if (off || r == Py_True)
		record(t, !off);
#endif
	Py_DECREF(r);
	return off;
}
