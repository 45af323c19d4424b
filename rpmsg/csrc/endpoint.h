/*
 * rpmsg._endpoint_c: the endpoint's send/recv methods in C (CPython API), host and remote role. What each file
 * holds:
 *
 *   endpoint_cpath.[ch]    the C path (struct rpc_path): try_send/try_recv and the batch and zero-copy steps,
 *                          each mirroring one step of the Python path; no Python
 *   endpoint_gate.c        Gate: what a device hands its endpoints (the C path, its lock, its callbacks), and
 *                          the helpers every method uses (the lock without waiting, the device's kick, failures)
 *   endpoint_send.c        send, sendto, send_many, get_buffer, send_buffer, send_buffer_reuse, and the batched
 *                          zero-copy get_buffers, send_buffers, send_buffers_reuse
 *   endpoint_recv.c        recv, recvfrom, recvfrom_many, and the blocking receive's sleep
 *   endpoint_txbuffer.c    TxBufferBase: the fields of rpmsg.core.TxBuffer, so get_buffer makes one without Python
 *   endpoint_message.c     MessageBase (the fields of rpmsg.core.Message) and recv_message: a zero-copy endpoint's
 *                          message lent in its buffer, given back by release
 *   endpoint_lock.c        DeviceLock: the device's reentrant lock (threading.RLock's API), taken here without
 *                          a Python call
 *   endpoint_module.c      EndpointBase (the type and its method table) and the module
 *
 * Why this exists: on one CPU a blocking round trip costs two context switches and a few syscalls (~2 us here);
 * every Python call and `with lock:` on the way costs 0.1-0.2 us more, and the endpoint API made of them cost
 * 2.5 us on top. These methods do the common case of rpmsg/device.py's C path (rpmsg/fastpath.py) without
 * entering the interpreter: the message fits, a send buffer (host) or a posted host buffer (remote) is there,
 * the message waiting is one well-formed message for this endpoint; and the wait until one comes, with or
 * without a timeout (the Python path's wait, in C: the sleep of wait mode "block", the spin then sleep of
 * "spin", the spin of "busy"; a timeout that runs out raises what the Python path raises, through the
 * endpoint's `_recv_timed_out`). Anything else (a non-blocking receive (timeout 0), another wait mode,
 * a message for someone else, a full ring, an error, tracing, a closed endpoint, keyword arguments) calls the
 * Python method `_<name>_py` with the same arguments, which is the whole endpoint implementation; these methods
 * only ever skip it, they never decide anything it would decide differently.
 *
 * Who may use the rings is decided by the device's lock (a DeviceLock, endpoint_lock.c; any lock with an RLock's
 * API works, through its Python methods): it is taken here without blocking; if another thread holds it, the
 * Python method waits for it instead. Whether the C path
 * applies at all is the Gate's `open` flag, kept by the device (RpmsgDevice._update_gate) whenever what it
 * depends on changes; the rest is checked per call (tracing, through the logger's isEnabledFor; the endpoint's
 * queue; the guard rpmsg/fastpath.py names: the host's send pool not replaced, the remote's spare buffer).
 *
 * What the C code knows of Python objects, all of it (anything else is handed over by Gate.attach/set_wait):
 *   - of a subclass of EndpointBase: the Python methods `_send_py`, `_sendto_py`, `_recv_py`, `_recvfrom_py`,
 *     `_send_many_py`, `_recvfrom_many_py`, `_get_buffer_py`, `_send_buffer_py`, `_send_buffer_reuse_py`,
 *     `_get_buffers_py`, `_send_buffers_py`, `_send_buffers_reuse_py`, `_recv_message_py`,
 *     called with the arguments of the C method when it hands over; and `_timeout` (None: no time limit), read
 *     before a receive sleeps in C (an attribute, not a slot: a subclass may make it a property), and
 *     `_recv_timed_out(timeout)`, called when it ran out (it raises the Python path's RpmsgTimeout); the queue
 *     bounds Endpoint._enqueue applies (`_max_queued`, `_max_queued_bytes`, else `_dev.limits.queued` and
 *     `.queued_bytes`) and `_fd` (None: no pollable descriptor), read before the C receive queues a batch;
 *   - public API: a lock's acquire/release, a memoryview's release, a deque's append/popleft/indexing.
 */
#ifndef RPROC_RPMSG_ENDPOINT_H
#define RPROC_RPMSG_ENDPOINT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <semaphore.h>

#include "endpoint_cpath.h"
#include "endpoint_trace.h"

/* --- DeviceLock: the device's reentrant lock, threading.RLock's API (endpoint_lock.c) ------------------------ */
typedef struct {
	PyObject_HEAD
	sem_t mutex; /* 1: free (a POSIX semaphore, as CPython's lock on Linux, without its clock read per take) */
	char mutex_ok; /* sem_init succeeded */
	unsigned long owner; /* the holder's thread ident, while count > 0 */
	unsigned long count; /* its depth; changed only with the GIL held */
	PyObject *weakrefs;
	/* A doorbell that carries memory (the UART mirror): at each last release, if a ring field this side writes
	 * changed, one publish asked of its thread through `publish_fd` (an eventfd; -1: none). See watch(). */
	int publish_fd;
	const struct rp_vq *watched[2];
	uint16_t seen[6];
} DeviceLock;

extern PyTypeObject DeviceLockType;

int dlock_try(DeviceLock *l);                          /* 1 taken (or once more by its holder), 0 held elsewhere */
int dlock_acquire(DeviceLock *l, long long timeout_us); /* -1: no limit; 1 taken, 0 timed out, -1 raised */
int dlock_release(DeviceLock *l);                      /* 0, or -1 (RuntimeError) when not held by this thread */
int dlock_owned(DeviceLock *l);
void dlock_retake(DeviceLock *l); /* unless this thread holds it: take it once, no signal handler running meanwhile */

/* --- Gate: the device's C path, shared by its endpoints (endpoint_gate.c) ---------------------------------- */
typedef struct {
	PyObject_HEAD
	struct rpc_path path; /* the rings, pool and batch buffer; path.block/kicks_on are the members of those names */
	int open;     /* the device says: the C path is in use and nothing needs the general path */
	int send_open; /* the device says: the C sends may go (open, or only a receive needs the general path:
			* a zero-copy or callback receiver, a pump thread); open implies it */
	int peek_open; /* the device says (remote role): a receive may take a message for its own endpoint straight
			* from the ring while the gate is shut for zero-copy receivers only (peek_take) */
	int attached; /* a C path is attached (path.rpf is set) */
	PyObject *acquire, *release; /* the device lock's bound methods */
	DeviceLock *dlock;           /* the device lock when it is a DeviceLock (taken without them), else NULL */
	struct trace_cache trace;    /* the device logger's isEnabledFor(TRACE), kept while unchanged */
	PyObject *guard, *guard_attr, *guard_value; /* the C send goes while getattr(guard, guard_attr) is guard_value */
	PyObject *kick;            /* device._kick(queue): the kick when the C write could not (reports a peer gone) */
	PyObject *take_batch;      /* device._take_batch(n): deliver a batch through the general parser */
	PyObject *send_failed;     /* device._c_send_failed(rc) / _c_recv_failed(rc): report a broken ring (raise) */
	PyObject *recv_failed;
	PyObject *take_waiting;    /* device._take_waiting(ep, out, limit, bufsize): recvfrom_many's rest */
	/* the blocking receive's sleep (set_wait): the doorbell's descriptor, its drain word, the device's wake
	 * eventfd and the device condition's notify_all, called only while `waiters` (threads waiting on that
	 * condition, counted by Waiter.wait_changed) is not 0. `owner`: the ident of the thread sleeping on the
	 * doorbell, or NULL/None (Waiter.owner: read before arming, set around the sleep, here or in Waiter.owning) */
	int poll_fd, wait_kick_fd, wake_fd;
	PyObject *notify_all;
	/* wait modes "spin" and "busy" (Waiter.wait, rpmsg/waiting.py): a receive with nothing waiting spins in C
	 * (the lock and the GIL released) up to spin_ns before sleeping as the blocking receive does, or (busy)
	 * in slices of busy_ns, handing over to the Python method when a slice ends empty; 0: not this mode */
	long long spin_ns, busy_ns;
	long long spin_cur; /* the C receive's spin now: spin_ns grown while messages come soon after it gave up
			     * (spin_budget, spin_adapt in endpoint_wait.c); 0: spin_ns */
	int waiters;
	PyObject *owner;
	/* zero-copy sends (set_zero_copy): the host's one view of its send buffers and the device address it
	 * starts at, the remote's tuple of views of the memory the host's receive buffers lie in (tx_lo unused);
	 * the TxBuffer class get_buffer makes (rpmsg.core.TxBuffer, a subclass of TxBufferBase), and the owner
	 * its buffers carry as `token` (the core: a buffer whose token is another is not this device's) */
	PyObject *tx_view;
	uint64_t tx_lo;
	PyTypeObject *txbuf_type;
	PyObject *tx_owner;
	/* zero-copy receives (set_lend): read-only memoryviews of the memory the rings' buffers lie in (a lent
	 * message's payload is a slice of one), and the Message class recv_message makes (a subclass of
	 * MessageBase) */
	PyObject *lend_views;
	PyTypeObject *lend_type;
} Gate;

extern PyTypeObject GateType;

int lock_try(Gate *g, PyObject **release);
void unlock(PyObject *release);
int gate_usable(Gate *g);
int gate_send_usable(Gate *g);
int gate_guard_holds(Gate *g);
/* Which of `views` (a tuple of memoryviews of bytes: the gate's views of the rings' memory) holds the `len` bytes
 * at `at`: its index, their offset in it in *off; -1 (no exception) when none does, or the one that did is
 * released. */
Py_ssize_t view_holding(PyObject *views, const uint8_t *at, Py_ssize_t len, Py_ssize_t *off);
int kick_python(Gate *g, int queue);
PyObject *failed(PyObject *report, int rc, PyObject *release);
PyObject *call_hook(PyObject *hook, PyObject *arg);

/* --- EndpointBase: the C methods of rpmsg's Endpoint (endpoint_module.c) ----------------------------------- */
typedef struct {
	PyObject_HEAD
	Gate *gate;        /* _gate */
	PyObject *addr;    /* addr: our address */
	PyObject *peer;    /* peer: where send goes (None: not connected) */
	PyObject *queue;   /* _queue: messages the Python path delivered here (Message), and the C receive
			    * ((payload, src) tuples: the rest of a batch all for this endpoint; Endpoint._take) */
	Py_ssize_t queued_bytes; /* _queued_bytes: the payload bytes in the queue */
	char closed;       /* closed */
	char zero_copy;    /* zero_copy: its messages are lent in their buffers (recv_message), not copied */
	/* A receive's deadline (mono_ns) handed to the Python method or a nested receive (recvfrom_many's first)
	 * when a C receive that began waiting with the endpoint's timeout hands over: the time limit runs on,
	 * not from the start again. Only for the thread that handed it (handed_thread), taken once: hand_over,
	 * take_handed (endpoint_wait.c); 0: none. */
	long long handed_deadline;
	unsigned long handed_thread;
} EndpointBase;

extern PyTypeObject EndpointBaseType;

PyObject *slow(EndpointBase *e, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
int u32_of(PyObject *v, uint32_t *out);

/* the methods (endpoint_send.c, endpoint_zerocopy.c, endpoint_recv.c, endpoint_recv_into.c) */
PyObject *ep_send(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_sendto(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_send_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_get_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_send_buffer(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_send_buffer_reuse(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_get_buffers(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_send_buffers(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_send_buffers_reuse(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_recv(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_recvfrom(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_recvfrom_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_recv_many(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_recv_many_into(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_take_more(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs);
PyObject *ep_take_buffers(EndpointBase *e, PyObject *arg);
PyObject *ep_queue_batch(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs);
PyObject *ep_recv_message(EndpointBase *e, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *ep_lend(EndpointBase *e, PyObject *unused);

/* what the methods share: the send's entry (endpoint_send.c), the receive's waiting (endpoint_wait.c) and queue
 * (endpoint_queue.c); each says what it returns */
int send_enter(Gate *g, PyObject **release, int *handled);
#define SLEEP_UNLOCKED -2 /* sleep_c: an error, and the lock is not held (interrupted while taking it back) */
int doorbell_owned(Gate *g);
int may_sleep(Gate *g, EndpointBase *e, PyObject **timeout);
long long take_handed(EndpointBase *e);
PyObject *hand_over(EndpointBase *e, PyObject *name, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		    long long deadline);
long long mono_ns(void);
long long spin_budget(const Gate *g);
void spin_adapt(Gate *g, long long slept_ns);
int sleep_c(Gate *g, PyObject *release, long long spin_ns, int own, long long timeout_ns);
/* A receive's look at the ring, the step of wait_turn: `arm` as rpc_try_recv's (-1 the peer's kicks off first, 1
 * on when nothing waits, looking once more, 0 as they are); > 0 something for this receive (the lock stays held),
 * 0 nothing waits, RPF_GENERAL the Python method's case, < 0 a broken ring. */
typedef int (*recv_look)(EndpointBase *e, int arm, void *ctx);
/* The C receive's wait (RpmsgDevice.try_recv_c's loop and Waiter.wait, step by step), the lock held on entry: look,
 * and while nothing waits, wait as the wait mode says (block: the kicks off while looking, on before sleeping on
 * the doorbell; spin: spin in C, then sleep; busy: a slice of spin), the endpoint's timeout kept in *deadline
 * (mono_ns; -1: not begun). Returns the look's result > 0 with the lock held; or 0 with it released, *handled 1
 * when an exception is set (a broken ring's PeerLost, the timeout's RpmsgTimeout, a signal handler's), 0 when the
 * Python method takes the call (WouldBlock's timeout 0, another thread on the doorbell, a message queued, the
 * gate changed: open for the copying receives, peek_open for a lend (`lend`)). */
int wait_turn(EndpointBase *e, PyObject **release, long long *deadline, int *handled, int lend, recv_look look,
	      void *ctx);
PyObject *gate_own(Gate *g, PyObject *lock);      /* Gate.own(lock) */
PyObject *gate_disown(Gate *g, PyObject *args);   /* Gate.disown(lock, notify_all) */
extern const char gate_own_doc[], gate_disown_doc[];
int recv_kick(Gate *g);
/* The turn of a receive that takes its own endpoint's next message in place from the ring (peek_take,
 * recv_many_into, the zero-copy lend) while the gate lets it (`peek_open`, or also `open` unless `peek_only`): no
 * tracing, nothing queued for the endpoint (the queue comes first), the lock taken without waiting. 1 with the
 * endpoint's address and the lock (for unlock); 0: the Python method's turn, no exception. */
int own_turn(EndpointBase *e, int peek_only, uint32_t *addr, PyObject **release);
PyObject *pop_queued(EndpointBase *e, Py_ssize_t queued);
int take_all_queued(EndpointBase *e, PyObject *out, Py_ssize_t bufsize, Py_ssize_t queued);
PyObject *queued_result(PyObject *item, Py_ssize_t bufsize, int with_src);
PyObject *queue_batch(EndpointBase *e, int n, Py_ssize_t bufsize, int with_src, PyObject *into, Py_ssize_t max);

/* --- TxBufferBase (endpoint_txbuffer.c) -------------------------------------------------------------------- */
typedef struct {
	PyObject_HEAD
	unsigned long long addr; /* the buffer's device address (its header; the payload follows) */
	PyObject *view;          /* writable view of the payload, released once sent; made on first use when
				  * `region` is set (C-made buffers: no view per message unless asked for) */
	unsigned int capacity;   /* payload bytes it holds */
	unsigned int slot;       /* the remote's: the head of the host's chain it holds (0 for the host's) */
	PyObject *token;
	char done;               /* sent or given back */
	PyObject *region;        /* C-made: the gate's view of the send buffers, the payload at `offset` in it */
	Py_ssize_t offset;
} TxBufferBase;

extern PyTypeObject TxBufferBaseType;

int txb_finish(TxBufferBase *b);
void txb_arm(Gate *g, TxBufferBase *b, uint64_t addr);
int txb_arm_lent(Gate *g, TxBufferBase *b, uint16_t head, uint64_t addr, const uint8_t *host, uint32_t len);

/* --- MessageBase (endpoint_message.c) ----------------------------------------------------------------------
 * The fields of rpmsg.core.Message (its base class), and the buffer a message lent by the C recv_message holds:
 * `lender` the gate whose receive ring it came from (NULL: not lent in C; a message of the Python path keeps
 * its give-back in `_release`, the member `give`), `token` and `size` what rpc_give needs. */
typedef struct {
	PyObject_HEAD
	PyObject *src, *dst, *payload;
	PyObject *give; /* `_release`: the Python path's give-back (NULL or None: none) */
	Gate *lender;
	uint64_t token;
	uint32_t size;
} MessageBase;

extern PyTypeObject MessageBaseType;

PyObject *msg_lend(Gate *g, uint32_t src, PyObject *dst, const uint8_t *payload, uint32_t len);

/* --- the names the C code looks up (endpoint_module.c; the list in the comment above) ---------------------- */
extern PyObject *s_timeout, *s_recv_timed_out, *s_release, *s_give_back;
extern PyObject *s_max_queued, *s_max_queued_bytes, *s_dev, *s_limits, *s_queued, *s_queued_bytes, *s_fd;
extern PyObject *s_append, *s_popleft;
extern PyObject *s_send_py, *s_sendto_py, *s_recv_py, *s_recvfrom_py, *s_recvfrom_many_py, *s_recv_many_py;
extern PyObject *s_send_many_py, *s_get_buffer_py, *s_send_buffer_py, *s_send_buffer_reuse_py;
extern PyObject *s_get_buffers_py, *s_send_buffers_py, *s_send_buffers_reuse_py, *s_recv_many_into_py;
extern PyObject *s_recv_message_py;

#endif /* RPROC_RPMSG_ENDPOINT_H */
