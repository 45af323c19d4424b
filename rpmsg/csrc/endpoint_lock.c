/* DeviceLock: the rpmsg device's lock, a reentrant lock with threading.RLock's Python API and behaviour, whose
 * state the endpoints' C methods read and change directly.
 *
 * Why: every C method takes the device lock for the few hundred nanoseconds it works on the rings. Through an
 * RLock that is two Python calls (acquire(False) builds an argument tuple and parses it; release), which perf
 * showed at about half of a C send_buffer_reuse (~170 ns of ~480 here). Here the common case (free, or held by
 * this thread) is an owner check and a non-blocking take of the mutex.
 *
 * As CPython's RLock (Modules/_threadmodule.c): `owner` and `count` change only with the GIL held; the mutex is a
 * POSIX semaphore, as a PyThread lock is on Linux (Python/thread_pthread.h, USE_SEMAPHORES), waited for with the
 * GIL released; a wait interrupted by a signal runs the signal handlers (Py_MakePendingCalls), and one that raises
 * ends the wait with its exception. Not the PyThread lock itself: CPython 3.11's PyThread_acquire_lock_timed reads
 * the monotonic clock on every call, a non-blocking take included (to build a deadline for sem_clockwait), and
 * perf showed those reads at ~8 % of a zero-copy receive; sem_trywait reads none. threading.Condition uses
 * _release_save/_acquire_restore/_is_owned as it does with an RLock. tests/rpmsg/test_device_lock.py holds it to
 * threading.RLock, call for call. */
#include "endpoint.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline unsigned long me(void)
{
	return PyThread_get_thread_ident();
}

/* The mutex without waiting: 1 taken, 0 held (EINTR: tried again, it cannot block). */
static int mutex_try(DeviceLock *l)
{
	int r;
	while ((r = sem_trywait(&l->mutex)) != 0 && errno == EINTR)
		;
	return r == 0;
}

/* The mutex, waiting as long as it takes with the GIL released, signals or not (RLock's _acquire_restore). */
static void mutex_wait(DeviceLock *l)
{
	if (mutex_try(l))
		return;
	Py_BEGIN_ALLOW_THREADS
	while (sem_wait(&l->mutex) != 0)
		; /* EINTR: the handlers run once the caller returns to Python */
	Py_END_ALLOW_THREADS
}

/* The ring fields this side writes that tell the peer something (the index that publishes entries, the flag and
 * the event index that ask for kicks): a driver's in the avail ring, a device's in the used ring. Descriptors and
 * buffers matter only once an index publishes them. */
static void own_fields(const struct rp_vq *vq, uint16_t out[3])
{
	const volatile uint8_t *ring = vq->role == RP_ROLE_DRIVER ? vq->avail : vq->used;
	size_t event = vq->role == RP_ROLE_DRIVER ? 4 + 2 * (size_t)vq->num : 4 + 8 * (size_t)vq->num;
	out[0] = *(const volatile uint16_t *)ring;
	out[1] = *(const volatile uint16_t *)(ring + 2);
	out[2] = *(const volatile uint16_t *)(ring + event);
}

/* A mirroring doorbell's publish (watch()): after this side changed a ring under the lock, its thread sends what
 * changed (transports/mirror.py: the peer sees only what is sent). One eventfd write when a field moved. */
static void publish_changes(DeviceLock *l)
{
	uint16_t now[6];
	for (int i = 0; i < 2; i++)
		own_fields(l->watched[i], now + 3 * i);
	if (memcmp(now, l->seen, sizeof now) == 0)
		return;
	memcpy(l->seen, now, sizeof now);
	uint64_t one = 1;
	if (write(l->publish_fd, &one, 8) != 8) {
		/* a full counter (2^64 - 2 publishes nobody read) or a closed doorbell: the runner's next wait says */
	}
}

static void mutex_release(DeviceLock *l)
{
	if (l->publish_fd >= 0)
		publish_changes(l);
	sem_post(&l->mutex);
}

int dlock_owned(DeviceLock *l)
{
	return l->count > 0 && l->owner == me();
}

int dlock_try(DeviceLock *l)
{
	unsigned long tid = me();
	if (l->count > 0 && l->owner == tid) {
		if (l->count == ULONG_MAX) /* as RLock: never wraps */
			return 0;
		l->count++;
		return 1;
	}
	if (!mutex_try(l))
		return 0;
	l->owner = tid;
	l->count = 1;
	return 1;
}

/* As _acquire_restore with a count of one, unless this thread holds the lock already: the wait cannot be ended by
 * a signal handler (they run once the caller returns to Python). */
void dlock_retake(DeviceLock *l)
{
	if (dlock_owned(l))
		return;
	mutex_wait(l);
	l->owner = me();
	l->count = 1;
}

/* Take the mutex, waiting up to timeout_us (-1: no limit) with the GIL released: 1 taken, 0 timed out, -1 a
 * signal handler raised (as PyThread_acquire_lock_timed with intr_flag, then Py_MakePendingCalls). */
static int wait_mutex(DeviceLock *l, long long timeout_us)
{
	if (mutex_try(l))
		return 1;
	if (timeout_us == 0)
		return 0;
	long long deadline_ns = timeout_us > 0 ? mono_ns() + timeout_us * 1000 : 0;
	struct timespec until = { (time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000) };
	for (;;) {
		int r, err;
		Py_BEGIN_ALLOW_THREADS
		r = timeout_us > 0 ? sem_clockwait(&l->mutex, CLOCK_MONOTONIC, &until) : sem_wait(&l->mutex);
		err = errno;
		Py_END_ALLOW_THREADS
		if (r == 0)
			return 1;
		if (err == ETIMEDOUT)
			return mutex_try(l); /* as CPython: once more without waiting */
		if (err != EINTR) {
			PyErr_SetFromErrno(PyExc_OSError);
			return -1;
		}
		if (Py_MakePendingCalls() < 0) /* the handlers run; one that raised ends the wait */
			return -1;
	}
}

int dlock_acquire(DeviceLock *l, long long timeout_us)
{
	if (dlock_try(l))
		return 1;
	if (l->count > 0 && l->owner == me()) { /* only at ULONG_MAX */
		PyErr_SetString(PyExc_OverflowError, "Internal lock count overflowed");
		return -1;
	}
	int r = wait_mutex(l, timeout_us);
	if (r == 1) {
		l->owner = me();
		l->count = 1;
	}
	return r;
}

int dlock_release(DeviceLock *l)
{
	if (!dlock_owned(l)) {
		PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
		return -1;
	}
	if (--l->count == 0) {
		l->owner = 0;
		mutex_release(l);
	}
	return 0;
}

/* --- the Python API: threading.RLock's ----------------------------------------------------------------------- */
static PyObject *dl_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	if ((args && PyTuple_GET_SIZE(args)) || (kw && PyDict_GET_SIZE(kw))) {
		PyErr_SetString(PyExc_TypeError, "DeviceLock() takes no arguments");
		return NULL;
	}
	DeviceLock *l = (DeviceLock *)type->tp_alloc(type, 0);
	if (!l)
		return NULL;
	if (sem_init(&l->mutex, 0, 1) != 0) {
		Py_DECREF(l);
		PyErr_SetFromErrno(PyExc_OSError);
		return NULL;
	}
	l->mutex_ok = 1;
	l->publish_fd = -1;
	return (PyObject *)l;
}

static void dl_dealloc(DeviceLock *l)
{
	if (l->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)l);
	if (l->mutex_ok) /* a lock freed while held: nobody waits on it (they hold references) */
		sem_destroy(&l->mutex);
	Py_TYPE(l)->tp_free((PyObject *)l);
}

/* acquire(blocking=True, timeout=-1) -> bool, with RLock's checks and words */
static PyObject *dl_acquire(DeviceLock *l, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *blocking_obj = NULL, *timeout_obj = NULL;
	static const char *const kwlist[] = { "blocking", "timeout" };
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	if (nargs > 2) {
		PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 arguments (%zd given)", nargs + nkw);
		return NULL;
	}
	if (nargs > 0)
		blocking_obj = args[0];
	if (nargs > 1)
		timeout_obj = args[1];
	for (Py_ssize_t i = 0; i < nkw; i++) {
		PyObject *name = PyTuple_GET_ITEM(kwnames, i);
		PyObject **slot = NULL;
		for (int k = 0; k < 2; k++)
			if (PyUnicode_CompareWithASCIIString(name, kwlist[k]) == 0)
				slot = k ? &timeout_obj : &blocking_obj;
		if (!slot) {
			PyErr_Format(PyExc_TypeError, "acquire() got an unexpected keyword argument '%U'", name);
			return NULL;
		}
		if (*slot) {
			PyErr_Format(PyExc_TypeError, "argument for acquire() given by name ('%U') and position", name);
			return NULL;
		}
		*slot = args[nargs + i];
	}
	int blocking = 1;
	if (blocking_obj && (blocking = PyObject_IsTrue(blocking_obj)) < 0)
		return NULL;
	double timeout = -1;
	if (timeout_obj && (timeout = PyFloat_AsDouble(timeout_obj)) == -1 && PyErr_Occurred())
		return NULL;
	if (!blocking && timeout != -1) {
		PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
		return NULL;
	}
	if (timeout < 0 && timeout != -1) {
		PyErr_SetString(PyExc_ValueError, "timeout value must be positive");
		return NULL;
	}
	long long us = -1;
	if (!blocking) {
		us = 0;
	} else if (timeout >= 0) {
		if (timeout * 1e6 >= (double)PY_TIMEOUT_MAX) {
			PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
			return NULL;
		}
		us = (long long)(timeout * 1e6);
	}
	int r = dlock_acquire(l, us);
	if (r < 0)
		return NULL;
	return PyBool_FromLong(r);
}

static PyObject *dl_release(DeviceLock *l, PyObject *unused)
{
	(void)unused;
	if (dlock_release(l) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *dl_exit(DeviceLock *l, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	return dl_release(l, NULL);
}

static PyObject *dl_is_owned(DeviceLock *l, PyObject *unused)
{
	(void)unused;
	return PyBool_FromLong(dlock_owned(l));
}

/* Condition.wait: let go whatever the depth, and say what to restore */
static PyObject *dl_release_save(DeviceLock *l, PyObject *unused)
{
	(void)unused;
	if (l->count == 0) {
		PyErr_SetString(PyExc_RuntimeError, "cannot release un-acquired lock");
		return NULL;
	}
	unsigned long count = l->count, owner = l->owner;
	l->count = 0;
	l->owner = 0;
	mutex_release(l);
	return Py_BuildValue("(kk)", count, owner);
}

/* ... and take it back as it was (waiting uninterrupted, as RLock does) */
static PyObject *dl_acquire_restore(DeviceLock *l, PyObject *state)
{
	unsigned long count, owner;
	if (!PyArg_ParseTuple(state, "kk:_acquire_restore", &count, &owner))
		return NULL;
	mutex_wait(l);
	l->owner = owner;
	l->count = count;
	Py_RETURN_NONE;
}

/* watch(publish_fd, rx, tx): publish through `publish_fd` at each last release after which a field this side
 * writes in the rings at addresses `rx` and `tx` (struct rp_vq *, rpmsg/fastpath.py's) changed; watch(-1, 0, 0)
 * stops; one publish is asked at once. The caller keeps the rings and the descriptor alive while watched (the
 * device: its fast path, the doorbell's loan). */
static PyObject *dl_watch(DeviceLock *l, PyObject *args)
{
	int fd;
	unsigned long long rx, tx;
	if (!PyArg_ParseTuple(args, "iKK:watch", &fd, &rx, &tx))
		return NULL;
	if (fd >= 0 && (!rx || !tx)) {
		PyErr_SetString(PyExc_ValueError, "watch: two rings to watch");
		return NULL;
	}
	l->publish_fd = -1;
	if (fd < 0)
		Py_RETURN_NONE;
	l->watched[0] = (const struct rp_vq *)(uintptr_t)rx;
	l->watched[1] = (const struct rp_vq *)(uintptr_t)tx;
	for (int i = 0; i < 2; i++)
		own_fields(l->watched[i], l->seen + 3 * i);
	l->publish_fd = fd;
	uint64_t one = 1; /* and one publish now: what this side wrote before (the rings' setup) goes out */
	if (write(fd, &one, 8) != 8)
		return PyErr_SetFromErrno(PyExc_OSError);
	Py_RETURN_NONE;
}

static PyObject *dl_repr(DeviceLock *l)
{
	return PyUnicode_FromFormat("<%s %s object owner=%lu count=%lu at %p>", l->count ? "locked" : "unlocked",
				    Py_TYPE(l)->tp_name, l->count ? l->owner : 0UL, l->count, l);
}

static PyMethodDef dl_methods[] = {
	{ "acquire", (PyCFunction)(void (*)(void))dl_acquire, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("acquire(blocking=True, timeout=-1) -> bool\n\nAs threading.RLock.acquire.") },
	{ "release", (PyCFunction)dl_release, METH_NOARGS, PyDoc_STR("release()\n\nAs threading.RLock.release.") },
	{ "__enter__", (PyCFunction)(void (*)(void))dl_acquire, METH_FASTCALL | METH_KEYWORDS,
	  PyDoc_STR("acquire()") },
	{ "__exit__", (PyCFunction)(void (*)(void))dl_exit, METH_FASTCALL, PyDoc_STR("release()") },
	{ "_is_owned", (PyCFunction)dl_is_owned, METH_NOARGS, PyDoc_STR("held by the calling thread") },
	{ "_release_save", (PyCFunction)dl_release_save, METH_NOARGS, PyDoc_STR("for threading.Condition") },
	{ "_acquire_restore", (PyCFunction)dl_acquire_restore, METH_O, PyDoc_STR("for threading.Condition") },
	{ "watch", (PyCFunction)dl_watch, METH_VARARGS,
	  PyDoc_STR("watch(publish_fd, rx, tx)\n\nPublish through an eventfd after a release that changed a ring "
		    "field this side writes (a mirroring doorbell); watch(-1, 0, 0) stops.") },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject DeviceLockType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rpmsg._endpoint_c.DeviceLock",
	.tp_doc = PyDoc_STR("DeviceLock()\n\nThe rpmsg device's reentrant lock: threading.RLock's API, and taken "
			    "by the endpoints' C methods without a Python call (rpmsg/csrc/endpoint_lock.c)."),
	.tp_basicsize = sizeof(DeviceLock),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_new = dl_new,
	.tp_dealloc = (destructor)dl_dealloc,
	.tp_repr = (reprfunc)dl_repr,
	.tp_methods = dl_methods,
	.tp_weaklistoffset = offsetof(DeviceLock, weakrefs),
};
