/* EndpointBase, the base class of rpmsg's Endpoint whose methods endpoint_send.c and endpoint_recv.c are, and
 * the module rpmsg._endpoint_c. See endpoint.h for what each file holds and what the C code knows of Python. */
#include "endpoint.h"

#include <structmember.h>

/* The names looked up, all of them (endpoint.h says why each): set once by the module's init. */
PyObject *s_timeout, *s_recv_timed_out, *s_release, *s_give_back;
PyObject *s_max_queued, *s_max_queued_bytes, *s_dev, *s_limits, *s_queued, *s_queued_bytes, *s_fd;
PyObject *s_append, *s_popleft;
PyObject *s_send_py, *s_sendto_py, *s_recv_py, *s_recvfrom_py, *s_recvfrom_many_py, *s_recv_many_py;
PyObject *s_send_many_py, *s_get_buffer_py, *s_send_buffer_py, *s_send_buffer_reuse_py;
PyObject *s_get_buffers_py, *s_send_buffers_py, *s_send_buffers_reuse_py, *s_recv_many_into_py;
PyObject *s_recv_message_py;

static int ep_traverse(EndpointBase *e, visitproc visit, void *arg)
{
	Py_VISIT(e->gate);
	Py_VISIT(e->addr);
	Py_VISIT(e->peer);
	Py_VISIT(e->queue);
	return 0;
}

static int ep_clear(EndpointBase *e)
{
	Py_CLEAR(e->gate);
	Py_CLEAR(e->addr);
	Py_CLEAR(e->peer);
	Py_CLEAR(e->queue);
	return 0;
}

static void ep_dealloc(EndpointBase *e)
{
	PyObject_GC_UnTrack(e);
	ep_clear(e);
	Py_TYPE(e)->tp_free((PyObject *)e);
}

/* The Python method `name` of this endpoint with the arguments as given (keywords included). */
PyObject *slow(EndpointBase *e, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	PyObject *stack[8];
	if (nargs + nkw + 1 > 8) {
		PyErr_SetString(PyExc_TypeError, "too many arguments");
		return NULL;
	}
	stack[0] = (PyObject *)e;
	for (Py_ssize_t i = 0; i < nargs + nkw; i++)
		stack[i + 1] = args[i];
	return PyObject_VectorcallMethod(name, stack, (size_t)(nargs + 1), kwnames);
}

int u32_of(PyObject *v, uint32_t *out)
{
	if (!v || !PyLong_CheckExact(v))
		return 0;
	unsigned long x = PyLong_AsUnsignedLong(v);
	if (x == (unsigned long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	if (x > 0xffffffffUL)
		return 0;
	*out = (uint32_t)x;
	return 1;
}

static PyObject *ep_handed_deadline(EndpointBase *e, PyObject *unused)
{
	(void)unused;
	long long d = take_handed(e);
	if (d < 0)
		Py_RETURN_NONE;
	return PyFloat_FromDouble((double)d / 1e9);
}

static PyMethodDef ep_methods[] = {
	{ "_handed_deadline", (PyCFunction)ep_handed_deadline, METH_NOARGS,
	  PyDoc_STR("_handed_deadline() -> float | None\n\nThe deadline (time.monotonic()) of a receive that began "
		    "waiting in C and handed over to the Python method in this thread, taken; None: none.") },
	{ "send", (PyCFunction)(void (*)(void))ep_send, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send(data) -> int\n\nSend to the connected peer (see connect); returns len(data).") },
	{ "sendto", (PyCFunction)(void (*)(void))ep_sendto, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("sendto(data, dst) -> int\n\nSend to address dst; returns len(data).") },
	{ "recv", (PyCFunction)(void (*)(void))ep_recv, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv(bufsize=65536) -> bytes\n\nThe next message (at most bufsize bytes of it).") },
	{ "recvfrom", (PyCFunction)(void (*)(void))ep_recvfrom, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recvfrom(bufsize=65536) -> (bytes, src)\n\nThe next message and its source address.") },
	{ "send_many", (PyCFunction)(void (*)(void))ep_send_many, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_many(messages, dst=None) -> int\n\nSend each message in order, one publish and at most "
		    "one kick per batch; returns how many were sent (see docs/rpmsg.md, Batches).") },
	{ "recvfrom_many", (PyCFunction)(void (*)(void))ep_recvfrom_many, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recvfrom_many(max=64, bufsize=65536) -> [(bytes, src)]\n\nWait for one message, then take "
		    "those already there, up to max.") },
	{ "recv_many", (PyCFunction)(void (*)(void))ep_recv_many, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv_many(max=64, bufsize=65536) -> [bytes]\n\nrecvfrom_many without the sources.") },
	{ "recv_many_into", (PyCFunction)(void (*)(void))ep_recv_many_into, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv_many_into(buffer, sizes, slot=0) -> int\n\nrecv_many into the slots of one buffer, the "
		    "sizes into an array('I'): no object per message.") },
	{ "get_buffer", (PyCFunction)(void (*)(void))ep_get_buffer, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("get_buffer() -> TxBuffer\n\nZero-copy send (host): a send buffer to write into.") },
	{ "send_buffer", (PyCFunction)(void (*)(void))ep_send_buffer, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffer(buf, length, dst=None)\n\nSend a buffer from get_buffer with length bytes.") },
	{ "send_buffer_reuse", (PyCFunction)(void (*)(void))ep_send_buffer_reuse, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffer_reuse(buf, length, dst=None) -> bool\n\nsend_buffer, then point the same buf at "
		    "a send buffer free now (True), or leave it sent (False: none free; get_buffer waits for one).") },
	{ "get_buffers", (PyCFunction)(void (*)(void))ep_get_buffers, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("get_buffers(max=64) -> [TxBuffer]\n\nZero-copy send (host): up to max send buffers, at least "
		    "one (waited for as get_buffer waits).") },
	{ "send_buffers", (PyCFunction)(void (*)(void))ep_send_buffers, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffers(bufs, lengths, dst=None)\n\nSend filled buffers (lengths: one int for all, or "
		    "one each), one publish and at most one kick.") },
	{ "send_buffers_reuse", (PyCFunction)(void (*)(void))ep_send_buffers_reuse, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("send_buffers_reuse(bufs, lengths, dst=None) -> int\n\nsend_buffers, then point the first of "
		    "bufs at send buffers free now, in order: how many were (the rest stay sent).") },
	{ "_take_more", (PyCFunction)(void (*)(void))ep_take_more, METH_FASTCALL,
	  PyDoc_STR("_take_more(out, max, bufsize) -> bool\n\nrecvfrom_many's rest in C, for the Python method: "
		    "the messages already there appended to out as (bytes, src), up to max in all; False when the "
		    "device's take_waiting must go on.") },
	{ "_queue_batch", (PyCFunction)(void (*)(void))ep_queue_batch, METH_FASTCALL,
	  PyDoc_STR("_queue_batch(n, bufsize) -> (bytes, src) | None\n\nA batch the C path took, all for this "
		    "endpoint: the first returned, the rest queued as copies; None: the device's parser's.") },
	{ "_take_buffers", (PyCFunction)ep_take_buffers, METH_O,
	  PyDoc_STR("_take_buffers(max) -> [TxBuffer] | None\n\nget_buffers' rest in C, for the Python method after "
		    "its wait: up to max send buffers free now, or None when the device's take_buffers must take "
		    "them.") },
	{ "_lend", (PyCFunction)ep_lend, METH_NOARGS,
	  PyDoc_STR("_lend() -> Message | None\n\nThe next message waiting, lent in C (a zero-copy endpoint), or None: "
		    "recv_message's look, for the Python method after each wait.") },
	{ "recv_message", (PyCFunction)(void (*)(void))ep_recv_message, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("recv_message() -> Message\n\nThe next message as a Message (a zero-copy endpoint's lent in "
		    "its buffer until released).") },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef ep_members[] = {
	{ "addr", T_OBJECT_EX, offsetof(EndpointBase, addr), 0, "this endpoint's address" },
	{ "peer", T_OBJECT, offsetof(EndpointBase, peer), 0, "the address send() goes to (None: not connected)" },
	{ "_queue", T_OBJECT_EX, offsetof(EndpointBase, queue), 0,
	  "messages delivered here: Message (the Python path) or (payload, src) (the C receive)" },
	{ "_queued_bytes", T_PYSSIZET, offsetof(EndpointBase, queued_bytes), 0, "the payload bytes in _queue" },
	{ "closed", T_BOOL, offsetof(EndpointBase, closed), 0, "closed by close()" },
	{ "zero_copy", T_BOOL, offsetof(EndpointBase, zero_copy), 0,
	  "its messages are lent in their buffers (recv_message), not copied" },
	{ NULL, 0, 0, 0, NULL },
};

/* _gate is checked when set: the C methods trust it to be a Gate. */
static int ep_set_gate(EndpointBase *e, PyObject *value, void *closure)
{
	(void)closure;
	if (value && value != Py_None && !PyObject_TypeCheck(value, &GateType)) {
		PyErr_SetString(PyExc_TypeError, "_gate must be a rpmsg._endpoint_c.Gate or None");
		return -1;
	}
	PyObject *old = (PyObject *)e->gate;
	e->gate = value && value != Py_None ? (Gate *)Py_NewRef(value) : NULL;
	Py_XDECREF(old);
	return 0;
}

static PyObject *ep_get_gate(EndpointBase *e, void *closure)
{
	(void)closure;
	return Py_NewRef(e->gate ? (PyObject *)e->gate : Py_None);
}

static PyGetSetDef ep_getset[] = {
	{ "_gate", (getter)ep_get_gate, (setter)ep_set_gate, "the device's Gate (None: Python only)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject EndpointBaseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.EndpointBase",
	.tp_doc = PyDoc_STR("The C methods of rpmsg's Endpoint (its base class)."),
	.tp_basicsize = sizeof(EndpointBase),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = PyType_GenericNew,
	.tp_dealloc = (destructor)ep_dealloc,
	.tp_traverse = (traverseproc)ep_traverse,
	.tp_clear = (inquiry)ep_clear,
	.tp_getset = ep_getset,
	.tp_methods = ep_methods,
	.tp_members = ep_members,
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "rpmsg._endpoint_c",
	.m_doc = PyDoc_STR("The endpoint's send/recv entry points in C; see rpmsg/csrc/endpoint.h."),
	.m_size = -1,
};

PyMODINIT_FUNC PyInit__endpoint_c(void)
{
	if (PyType_Ready(&GateType) < 0 || PyType_Ready(&EndpointBaseType) < 0 || PyType_Ready(&TxBufferBaseType) < 0 ||
	    PyType_Ready(&DeviceLockType) < 0 || PyType_Ready(&MessageBaseType) < 0)
		return NULL;
	static const struct {
		const char *name;
		PyObject **slot;
	} names[] = {
		{ "_timeout", &s_timeout },
		{ "_recv_timed_out", &s_recv_timed_out },
		{ "release", &s_release },
		{ "give_back", &s_give_back },
		{ "_max_queued", &s_max_queued },
		{ "_max_queued_bytes", &s_max_queued_bytes },
		{ "_dev", &s_dev },
		{ "limits", &s_limits },
		{ "queued", &s_queued },
		{ "queued_bytes", &s_queued_bytes },
		{ "_fd", &s_fd },
		{ "append", &s_append },
		{ "popleft", &s_popleft },
		{ "_send_py", &s_send_py },
		{ "_sendto_py", &s_sendto_py },
		{ "_recv_py", &s_recv_py },
		{ "_recvfrom_py", &s_recvfrom_py },
		{ "_recvfrom_many_py", &s_recvfrom_many_py },
		{ "_recv_many_py", &s_recv_many_py },
		{ "_send_many_py", &s_send_many_py },
		{ "_get_buffer_py", &s_get_buffer_py },
		{ "_send_buffer_py", &s_send_buffer_py },
		{ "_send_buffer_reuse_py", &s_send_buffer_reuse_py },
		{ "_get_buffers_py", &s_get_buffers_py },
		{ "_send_buffers_py", &s_send_buffers_py },
		{ "_send_buffers_reuse_py", &s_send_buffers_reuse_py },
		{ "_recv_many_into_py", &s_recv_many_into_py },
		{ "_recv_message_py", &s_recv_message_py },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!(*names[i].slot = PyUnicode_InternFromString(names[i].name)))
			return NULL;
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	Py_INCREF(&GateType);
	Py_INCREF(&EndpointBaseType);
	Py_INCREF(&TxBufferBaseType);
	Py_INCREF(&DeviceLockType);
	Py_INCREF(&MessageBaseType);
	if (PyModule_AddObject(m, "DeviceLock", (PyObject *)&DeviceLockType) < 0 ||
	    PyModule_AddObject(m, "TxBufferBase", (PyObject *)&TxBufferBaseType) < 0 ||
	    PyModule_AddObject(m, "MessageBase", (PyObject *)&MessageBaseType) < 0 ||
	    PyModule_AddObject(m, "Gate", (PyObject *)&GateType) < 0 ||
	    PyModule_AddObject(m, "EndpointBase", (PyObject *)&EndpointBaseType) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
