/* TxBufferBase: the fields of rpmsg.core.TxBuffer (its base class), so that get_buffer can make one without
 * Python, and writes into it go straight to shared memory. */
#include "endpoint.h"

#include <structmember.h>

static int txb_traverse(TxBufferBase *b, visitproc visit, void *arg)
{
	Py_VISIT(b->view);
	Py_VISIT(b->token);
	Py_VISIT(b->region);
	return 0;
}

static int txb_clear(TxBufferBase *b)
{
	Py_CLEAR(b->view);
	Py_CLEAR(b->token);
	Py_CLEAR(b->region);
	return 0;
}

static void txb_dealloc(TxBufferBase *b)
{
	PyObject_GC_UnTrack(b);
	txb_clear(b);
	Py_TYPE(b)->tp_free((PyObject *)b);
}

/* Mark sent and release the view if one was made (a late write through it then raises instead of changing a
 * buffer the peer reads; a write through the buffer itself checks `done`). A view that cannot be released (still
 * exported: BufferError) leaves the buffer as it was, not sent, to be sent once the export is gone. */
int txb_finish(TxBufferBase *b)
{
	if (b->view && b->view != Py_None) {
		PyObject *r = PyObject_CallMethodNoArgs(b->view, s_release);
		if (!r)
			return -1;
		Py_DECREF(r);
	}
	b->done = 1;
	return 0;
}

static PyObject *txb_finish_method(TxBufferBase *b, PyObject *unused)
{
	(void)unused;
	if (txb_finish(b) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *txb_get_view(TxBufferBase *b, void *closure)
{
	(void)closure;
	if (!b->view && b->region) {
		PyObject *lo = PyLong_FromSsize_t(b->offset);
		PyObject *hi = PyLong_FromSsize_t(b->offset + (Py_ssize_t)b->capacity);
		PyObject *slice = lo && hi ? PySlice_New(lo, hi, NULL) : NULL;
		Py_XDECREF(lo);
		Py_XDECREF(hi);
		if (!slice)
			return NULL;
		b->view = PyObject_GetItem(b->region, slice);
		Py_DECREF(slice);
		if (!b->view)
			return NULL;
		if (b->done && txb_finish(b) < 0) /* asked for after it was sent: released, as the old one was */
			return NULL;
	}
	return Py_NewRef(b->view ? b->view : Py_None);
}

static int txb_set_view(TxBufferBase *b, PyObject *value, void *closure)
{
	(void)closure;
	Py_XINCREF(value);
	Py_XSETREF(b->view, value);
	Py_CLEAR(b->region); /* a view set from Python is where the payload is written */
	return 0;
}

/* buf[i] = v, buf[a:b] = data: straight into shared memory (C-made buffers), else through the view; refused
 * once sent. */
static int txb_ass_subscript(TxBufferBase *b, PyObject *key, PyObject *value)
{
	if (!value) {
		PyErr_SetString(PyExc_TypeError, "a TX buffer's bytes cannot be deleted");
		return -1;
	}
	if (b->done) {
		PyErr_SetString(PyExc_ValueError, "this TX buffer was sent or given back: take another (get_buffer)");
		return -1;
	}
	Py_ssize_t start, stop, step, len;
	int index = PyIndex_Check(key);
	if (!b->region || !(index || PySlice_Check(key))) {
		PyObject *view = txb_get_view(b, NULL);
		int r = view && view != Py_None ? PyObject_SetItem(view, key, value) : -1;
		if (view == Py_None)
			PyErr_SetString(PyExc_ValueError, "this TX buffer has no view");
		Py_XDECREF(view);
		return r;
	}
	if (index) {
		start = PyNumber_AsSsize_t(key, PyExc_IndexError);
		if (start == -1 && PyErr_Occurred())
			return -1;
		if (start < 0)
			start += b->capacity;
		if (start < 0 || start >= (Py_ssize_t)b->capacity) {
			PyErr_Format(PyExc_IndexError, "index out of this TX buffer's %u bytes", b->capacity);
			return -1;
		}
		stop = start + 1;
		step = 1;
	} else {
		if (PySlice_Unpack(key, &start, &stop, &step) < 0)
			return -1;
		PySlice_AdjustIndices(b->capacity, &start, &stop, step);
		if (step != 1) { /* strided: the view does it */
			PyObject *view = txb_get_view(b, NULL);
			int r = view ? PyObject_SetItem(view, key, value) : -1;
			Py_XDECREF(view);
			return r;
		}
	}
	len = stop > start ? stop - start : 0;
	Py_buffer src = { 0 };
	uint8_t byte;
	const void *from;
	if (index) {
		if (!PyLong_Check(value)) { /* as a memoryview of bytes says */
			PyErr_SetString(PyExc_TypeError, "a TX buffer's byte must be an int");
			return -1;
		}
		long v = PyLong_AsLong(value);
		if ((v == -1 && PyErr_Occurred()) || v < 0 || v > 255) {
			PyErr_Clear();
			PyErr_SetString(PyExc_ValueError, "a TX buffer's byte must be an int in range(256)");
			return -1;
		}
		byte = (uint8_t)v;
		from = &byte;
	} else {
		if (PyObject_GetBuffer(value, &src, PyBUF_SIMPLE) < 0)
			return -1;
		if (src.len != len) {
			PyErr_Format(PyExc_ValueError, "%zd bytes do not fill the %zd-byte slice of this TX buffer", src.len,
				     len);
			PyBuffer_Release(&src);
			return -1;
		}
		from = src.buf;
	}
	Py_buffer region;
	if (PyObject_GetBuffer(b->region, &region, PyBUF_WRITABLE) < 0) { /* the device let go of the memory */
		if (!index)
			PyBuffer_Release(&src);
		return -1;
	}
	int r = 0;
	if (b->offset < 0 || b->offset + (Py_ssize_t)b->capacity > region.len) {
		PyErr_SetString(PyExc_ValueError, "this TX buffer lies outside the send buffers");
		r = -1;
	} else if (len) {
		memcpy((uint8_t *)region.buf + b->offset + start, from, (size_t)len);
	}
	PyBuffer_Release(&region);
	if (!index)
		PyBuffer_Release(&src);
	return r;
}

static Py_ssize_t txb_length(TxBufferBase *b)
{
	return (Py_ssize_t)b->capacity;
}

static PyMappingMethods txb_as_mapping = {
	.mp_length = (lenfunc)txb_length,
	.mp_ass_subscript = (objobjargproc)txb_ass_subscript,
};

static PyMethodDef txb_methods[] = {
	{ "_finish", (PyCFunction)txb_finish_method, METH_NOARGS,
	  PyDoc_STR("_finish()\n\nMark the buffer sent (or given back) and release its view.") },
	{ NULL, NULL, 0, NULL },
};

static PyMemberDef txb_members[] = {
	{ "addr", T_ULONGLONG, offsetof(TxBufferBase, addr), 0, "the buffer's device address" },
	{ "capacity", T_UINT, offsetof(TxBufferBase, capacity), 0, "payload bytes it holds" },
	{ "slot", T_UINT, offsetof(TxBufferBase, slot), 0,
	  "the remote's: the head of the host's descriptor chain it holds (0 for the host's)" },
	{ "token", T_OBJECT, offsetof(TxBufferBase, token), 0, "the core's cookie" },
	{ "done", T_BOOL, offsetof(TxBufferBase, done), 0, "sent or given back" },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef txb_getset[] = {
	{ "view", (getter)txb_get_view, (setter)txb_set_view,
	  "writable view of the payload (released once sent; made on first use)", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject TxBufferBaseType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.TxBufferBase",
	.tp_doc = PyDoc_STR("The fields of rpmsg.core.TxBuffer (its base class)."),
	.tp_basicsize = sizeof(TxBufferBase),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
	.tp_new = PyType_GenericNew,
	.tp_dealloc = (destructor)txb_dealloc,
	.tp_traverse = (traverseproc)txb_traverse,
	.tp_clear = (inquiry)txb_clear,
	.tp_methods = txb_methods,
	.tp_members = txb_members,
	.tp_getset = txb_getset,
	.tp_as_mapping = &txb_as_mapping,
};

/* Point `b` at the free send buffer `addr` (a C-made buffer: writes go straight to shared memory). */
void txb_arm(Gate *g, TxBufferBase *b, uint64_t addr)
{
	b->addr = addr;
	b->offset = (Py_ssize_t)(addr - g->tx_lo + RPC_HDR);
	b->capacity = g->path.max_payload;
	b->done = 0;
	Py_CLEAR(b->view);
	Py_INCREF(g->tx_view);
	Py_XSETREF(b->region, g->tx_view);
	Py_XSETREF(b->token, Py_NewRef(g->tx_owner ? g->tx_owner : Py_None));
}

/* Point `b` at a host receive buffer the remote holds (rpc_lend: chain `head`, its descriptor at `addr`, `len`
 * bytes at `host`): its payload a slice of the gate's view holding it (set_zero_copy's tuple, the views of the
 * memory vring 0's buffers lie in, as the engine translates: one holds it). -1 with RuntimeError when none does
 * (a view released: the device is closing; the buffer stays held). */
int txb_arm_lent(Gate *g, TxBufferBase *b, uint16_t head, uint64_t addr, const uint8_t *host, uint32_t len)
{
	Py_ssize_t off;
	Py_ssize_t i = view_holding(g->tx_view, host, len, &off);
	if (i < 0) {
		PyErr_Format(PyExc_RuntimeError, "host buffer %u at %#llx lies in no view of the device's memory", head,
			     (unsigned long long)addr);
		return -1;
	}
	b->addr = addr;
	b->slot = head;
	b->offset = off + RPC_HDR;
	b->capacity = len - RPC_HDR < 0xffffu ? len - RPC_HDR : 0xffffu; /* payload_room */
	b->done = 0;
	Py_CLEAR(b->view);
	Py_XSETREF(b->region, Py_NewRef(PyTuple_GET_ITEM(g->tx_view, i)));
	Py_XSETREF(b->token, Py_NewRef(g->tx_owner ? g->tx_owner : Py_None));
	return 0;
}
