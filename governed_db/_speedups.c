/* Native helpers for the audit record's statement path (docs/decisions/0335-native-audit-helpers.md).
 *
 * Two functions, each the exact counterpart of a pure-Python routine that stays the reference and the fallback
 * (tests/test_speedups.py checks byte equality on random input):
 *
 *   frame(...)  copies one write-ahead journal frame into the memory-mapped journal
 *               (governed_db.audit.journal.Journal.put_intent);
 *   chain(...)  chains a run of prepared records into store lines, SHA-256 and (keyed) BLAKE2b tags included
 *               (governed_db.audit.store.AuditStore._write_many with records.chain_prepared).
 *
 * Hashing stays with hashlib (OpenSSL) and CRC-32 with zlib.crc32: called through the C API, they are the same
 * digests the Python code computes, without a second implementation to trust, and the build needs nothing but
 * a C compiler and Python's headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static PyObject *sha256_ctor;   /* hashlib.sha256 */
static PyObject *blake2b_ctor;  /* hashlib.blake2b */
static PyObject *crc32_func;    /* zlib.crc32 */
static PyObject *str_digest, *str_key, *str_digest_size, *str_pieces, *str_parts, *str_seq, *str_written,
    *str_type, *int_16;
static PyObject *intent_type, *outcome_type;  /* set by bind() */

static const char HEX[] = "0123456789abcdef";

static inline void put_u32(char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}

static inline void put_u64(char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (char)((v >> (8 * i)) & 0xff);
}

/* the digest of ``data`` by ``ctor`` (hashlib), with keyword arguments ``kw`` (a dict or NULL) */
static PyObject *digest_of(PyObject *ctor, const char *data, Py_ssize_t n, PyObject *kwnames, PyObject *const *kwv,
                           Py_ssize_t nkw) {
    PyObject *view = PyMemoryView_FromMemory((char *)data, n, PyBUF_READ);
    if (view == NULL) return NULL;
    PyObject *args[4];
    args[0] = view;
    for (Py_ssize_t i = 0; i < nkw; i++) args[1 + i] = kwv[i];
    PyObject *h = PyObject_Vectorcall(ctor, args, 1, kwnames);
    Py_DECREF(view);
    if (h == NULL) return NULL;
    PyObject *d = PyObject_CallMethodNoArgs(h, str_digest);
    Py_DECREF(h);
    if (d != NULL && !PyBytes_Check(d)) {
        Py_DECREF(d);
        PyErr_SetString(PyExc_TypeError, "digest() did not return bytes");
        return NULL;
    }
    return d;
}

static PyObject *keyed_blake2b(const char *data, Py_ssize_t n, PyObject *key) {
    static PyObject *kwnames = NULL;
    if (kwnames == NULL) {
        kwnames = PyTuple_Pack(2, str_key, str_digest_size);
        if (kwnames == NULL) return NULL;
    }
    PyObject *kwv[2] = {key, int_16};
    return digest_of(blake2b_ctor, data, n, kwnames, kwv, 2);
}

/* ``o`` (an int, or an object with __index__) as a C integer in [lo, hi], the range the Python code's struct.pack
 * (or os.lseek, for a descriptor) takes for the field: OverflowError outside it, TypeError for another type. Each
 * argument is checked as soon as it is converted: the next conversion can run Python code (__index__), which must
 * not run with an exception set. */
static int int_arg(PyObject *o, const char *what, long long lo, long long hi, long long *v) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (overflow || x < lo || x > hi) {
        PyErr_Format(PyExc_OverflowError, "%s is out of range", what);
        return -1;
    }
    *v = x;
    return 0;
}

static int bytes_arg(PyObject *o, const char *what, char **p, Py_ssize_t *n) {
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes, not %.100s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    *p = PyBytes_AS_STRING(o);
    *n = PyBytes_GET_SIZE(o);
    return 0;
}

#define START_SIZE 20 /* <IQq: epoch, number, floor */
#define ITEM_SIZE 25  /* <BIIqq: kind, two lengths, intent seq, intent item */
#define TAG_SIZE 16
#define MAX_KEY 64 /* BLAKE2b's longest key: hashlib raises ValueError past it */

static char *put_item(char *p, int kind, Py_ssize_t la, Py_ssize_t lb, int64_t iseq, int64_t iitem) {
    p[0] = (char)kind;
    put_u32(p + 1, (uint32_t)la);
    put_u32(p + 5, (uint32_t)lb);
    put_u64(p + 9, (uint64_t)iseq);
    put_u64(p + 17, (uint64_t)iitem);
    return p + ITEM_SIZE;
}

/* -- the copy into the mapping, guarded against SIGBUS ------------------------------------------------------
 *
 * A page of a MAP_SHARED mapping that lies past the end of its file (someone truncated the journal) raises
 * SIGBUS when touched: the default action kills the process, with the intents it held only in memory. The
 * journal checks the file's size (lseek) before each copy, but a truncation can land between that check and the
 * copy. So the copy runs under a guard: a SIGBUS whose address lies in the mapping being copied into, raised in
 * the thread copying, jumps back out of the copy, and frame() reports the journal truncated
 * (docs/decisions/0369-a-journal-truncated-during-the-copy.md). The guard costs no system call a statement:
 * sigsetjmp without the signal mask, two thread-local stores. The handler is installed once (guard_install) and
 * hands every other SIGBUS to the handler that was there before, or to the default action. */
static __thread sigjmp_buf *volatile guard_env;
static __thread char *volatile guard_lo, *volatile guard_hi;
static struct sigaction guard_prev;
static int guard_on;

static void guard_handler(int sig, siginfo_t *info, void *uctx) {
    sigjmp_buf *env = guard_env;
    if (env != NULL && info != NULL && info->si_code > 0 && (char *)info->si_addr >= guard_lo &&
        (char *)info->si_addr < guard_hi) {
        guard_env = NULL;
        siglongjmp(*env, 1); /* SA_NODEFER: SIGBUS was not blocked for the handler, so no mask to restore */
    }
    /* not a fault of a guarded copy: what would have happened without us */
    if (guard_prev.sa_flags & SA_SIGINFO) {
        if (guard_prev.sa_sigaction != NULL) {
            guard_prev.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (guard_prev.sa_handler != SIG_DFL && guard_prev.sa_handler != SIG_IGN) {
        guard_prev.sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (info == NULL || info->si_code <= 0) raise(sig); /* sent, not a fault: deliver it again */
    /* a fault: returning runs the faulting instruction again, which now ends the process as before */
}

/* guard_install() -> bool: install the SIGBUS guard of the copies into journal mappings, or tell whether it is
 * still the handler (someone may have replaced it since, e.g. faulthandler.enable(): then False, and a copy's
 * SIGBUS goes to that handler — the process dies as it would have without the guard). */
static PyObject *guard_install(PyObject *self, PyObject *noargs) {
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) != 0) Py_RETURN_FALSE;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == guard_handler) Py_RETURN_TRUE;
    /* replaced since we installed it: not taken back (the new handler may hand SIGBUS on to ours: a loop) */
    if (guard_on) Py_RETURN_FALSE;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = guard_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &cur) != 0) Py_RETURN_FALSE;
    guard_prev = cur; /* the handler replaced (faulthandler's, Python's default) keeps every other SIGBUS */
    guard_on = 1;
    Py_RETURN_TRUE;
}

/* Copy the frame ``buf`` (head, then payload: ``n`` bytes) to ``mm + pos`` — the payload first, the head last, so
 * a frame cut short never counts — after checking the journal's magic is still there (a file cut and grown back
 * reads as zeros). 0: copied; 1: the magic is gone, nothing copied; 2: a page of the mapping was past the file's
 * end (SIGBUS caught): the file was truncated, the frame may be partly copied but its head is not. Nothing here
 * calls Python or takes a lock, so jumping out of it leaves nothing half done. */
static int guarded_copy(char *mm, Py_ssize_t mapsize, long long pos, const char *buf, long long n) {
    sigjmp_buf env;
    guard_lo = mm;
    guard_hi = mm + mapsize;
    if (sigsetjmp(env, 0) != 0) return 2; /* the handler cleared guard_env */
    guard_env = &env;
    __asm__ __volatile__("" ::: "memory");
    int ok = *(volatile char *)mm == 'G';
    if (ok) {
        memcpy(mm + pos + 8, buf + 8, (size_t)(n - 8));
        __asm__ __volatile__("" ::: "memory");
        memcpy(mm + pos, buf, 8);
    }
    __asm__ __volatile__("" ::: "memory");
    guard_env = NULL;
    return ok ? 0 : 1;
}

/* frame(mm, fd, pos, size, epoch, number, floor, a, b, pre, tail, iseq, iframe, jkey) -> end, 0, -1 or -2
 *
 * One journal frame at ``pos`` of the mapping ``mm`` (``size`` bytes, descriptor ``fd``): the outcome item
 * (``pre``/``tail``, its intent's ``iseq``/``iframe``) when neither is None, then the intent item (``a``/``b``),
 * a keyed tag when ``jkey`` is given, CRC-32 of it all in the frame head. Returns the offset past the frame; 0
 * when it does not fit; -1, writing nothing, when the file may have been truncated (shorter than the mapping, or
 * its magic gone): the caller's full check decides; -2 when the file was truncated during the copy (a SIGBUS
 * caught; only with the guard installed): the frame does not count. The same bytes Journal.put writes. An argument
 * the Python code's struct.pack refuses raises OverflowError, one of another type TypeError, a failing lseek
 * OSError (as os.lseek does); nothing is copied then. The frame is built and hashed in this function's own memory
 * and copied into [pos, end), within the mapping, last. */
static PyObject *frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 14) {
        PyErr_SetString(PyExc_TypeError, "frame() takes 14 arguments");
        return NULL;
    }
    long long fd, pos, size, epoch, number, floor_, iseq, iframe;
    /* the ranges of the fields the Python code packs them into: epoch I, number Q (here below 2**63), floor
     * and the intent's q */
    if (int_arg(args[1], "fd", INT_MIN, INT_MAX, &fd) < 0 || int_arg(args[2], "pos", LLONG_MIN, LLONG_MAX, &pos) < 0 ||
        int_arg(args[3], "size", LLONG_MIN, LLONG_MAX, &size) < 0 ||
        int_arg(args[4], "epoch", 0, UINT32_MAX, &epoch) < 0 || int_arg(args[5], "number", 0, LLONG_MAX, &number) < 0 ||
        int_arg(args[6], "floor", LLONG_MIN, LLONG_MAX, &floor_) < 0 ||
        int_arg(args[11], "iseq", LLONG_MIN, LLONG_MAX, &iseq) < 0 ||
        int_arg(args[12], "iframe", LLONG_MIN, LLONG_MAX, &iframe) < 0)
        return NULL;
    char *a, *b, *pre = NULL, *tail = NULL;
    Py_ssize_t la, lb, lpre = 0, ltail = 0;
    if (bytes_arg(args[7], "a", &a, &la) < 0 || bytes_arg(args[8], "b", &b, &lb) < 0) return NULL;
    /* as put_intent: the outcome item only when both its pieces are given */
    int with_outcome = args[9] != Py_None && args[10] != Py_None;
    if (with_outcome && (bytes_arg(args[9], "pre", &pre, &lpre) < 0 || bytes_arg(args[10], "tail", &tail, &ltail) < 0))
        return NULL;
    PyObject *jkey = args[13];
    if (jkey != Py_None && !PyBytes_Check(jkey)) {
        PyErr_SetString(PyExc_TypeError, "jkey must be bytes or None");
        return NULL;
    }
    if (jkey != Py_None && PyBytes_GET_SIZE(jkey) > MAX_KEY) { /* refused before a byte is copied, as hashlib would */
        PyErr_SetString(PyExc_ValueError, "maximum key length is 64 bytes");
        return NULL;
    }
    if (la > UINT32_MAX || lb > UINT32_MAX || lpre > UINT32_MAX || ltail > UINT32_MAX) return PyLong_FromLong(0);
    /* at most 4 * (2**32 - 1) + 86: no overflow */
    long long plen = START_SIZE + ITEM_SIZE + la + lb + (with_outcome ? ITEM_SIZE + lpre + ltail : 0) +
                     (jkey != Py_None ? TAG_SIZE : 0);
    /* the frame [pos, pos + 8 + plen) within [0, size), compared without computing a sum that could overflow */
    if (pos < 0 || pos > size || size - pos < 8 || plen > size - pos - 8 || plen > UINT32_MAX)
        return PyLong_FromLong(0);
    long long end = pos + 8 + plen;

    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) {
        /* a read-only or non-contiguous buffer: the TypeError the Python code's slice assignment raises */
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "mm must be a writable buffer, not %.100s", Py_TYPE(args[0])->tp_name);
        }
        return NULL;
    }
    if (view.len < size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the mapping is smaller than the journal's size");
        return NULL;
    }
    char *mm = (char *)view.buf;
    off_t fsize = lseek((int)fd, 0, SEEK_END);
    if (fsize < 0) { /* os.lseek's OSError, as the Python check raises it */
        PyErr_SetFromErrno(PyExc_OSError);
        PyBuffer_Release(&view);
        return NULL;
    }
    if (fsize < (off_t)size) {
        PyBuffer_Release(&view);
        return PyLong_FromLong(-1);
    }
    /* built here, hashed here (hashlib may let other threads run while it reads), then copied under the guard */
    char local[2048], *buf = local;
    if (8 + plen > (long long)sizeof local) {
        buf = PyMem_Malloc((size_t)(8 + plen));
        if (buf == NULL) {
            PyBuffer_Release(&view);
            return PyErr_NoMemory();
        }
    }
    char *p = buf + 8;
    put_u32(p, (uint32_t)epoch);
    put_u64(p + 4, (uint64_t)number);
    put_u64(p + 12, (uint64_t)floor_);
    p += START_SIZE;
    if (with_outcome) {
        p = put_item(p, 2, lpre, ltail, iseq, iframe);
        memcpy(p, pre, lpre);
        p += lpre;
        memcpy(p, tail, ltail);
        p += ltail;
    }
    p = put_item(p, 1, la, lb, -1, -1);
    memcpy(p, a, la);
    p += la;
    memcpy(p, b, lb);
    p += lb;
    PyObject *result = NULL;
    if (jkey != Py_None) {
        PyObject *t = keyed_blake2b(buf + 8, p - (buf + 8), jkey);
        if (t == NULL || PyBytes_GET_SIZE(t) != TAG_SIZE) {
            Py_XDECREF(t);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unexpected tag size");
            goto done;
        }
        memcpy(p, PyBytes_AS_STRING(t), TAG_SIZE);
        Py_DECREF(t);
        p += TAG_SIZE;
    }
    PyObject *cview = PyMemoryView_FromMemory(buf + 8, (Py_ssize_t)plen, PyBUF_READ);
    PyObject *crc = cview != NULL ? PyObject_CallOneArg(crc32_func, cview) : NULL;
    Py_XDECREF(cview);
    unsigned long crcv = crc != NULL ? PyLong_AsUnsignedLong(crc) : 0;
    Py_XDECREF(crc);
    if (PyErr_Occurred()) goto done; /* nothing copied: the frame does not count */
    put_u32(buf, (uint32_t)plen);
    put_u32(buf + 4, (uint32_t)crcv);
    if (!guard_on) {
        /* no guard (not installed): the copy as it was, after the same magic check */
        if (mm[0] != 'G') {
            result = PyLong_FromLong(-1);
            goto done;
        }
        memcpy(mm + pos + 8, buf + 8, (size_t)plen);
        memcpy(mm + pos, buf, 8);
        result = PyLong_FromLongLong(end);
        goto done;
    }
    switch (guarded_copy(mm, view.len, pos, buf, 8 + plen)) {
    case 0: result = PyLong_FromLongLong(end); break;
    case 1: result = PyLong_FromLong(-1); break;
    default: result = PyLong_FromLong(-2); break;
    }
done:
    if (buf != local) PyMem_Free(buf);
    PyBuffer_Release(&view);
    return result;
}

/* copy_frame(mm, fd, pos, size, frame) -> 0, -1 or -2
 *
 * A frame built in Python (its head, then its payload: Journal.put) copied to ``pos`` of the mapping ``mm`` as
 * frame() copies its own: after the file's size (lseek on ``fd``) and magic are checked, under the SIGBUS guard.
 * 0: copied; -1: nothing copied, the file may have been truncated (the caller's full check decides); -2: it was
 * truncated during the copy. ValueError for a frame that does not fit in [pos, size) of the mapping. */
static PyObject *copy_frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "copy_frame() takes 5 arguments");
        return NULL;
    }
    long long fd, pos, size;
    char *data;
    Py_ssize_t n;
    if (int_arg(args[1], "fd", INT_MIN, INT_MAX, &fd) < 0 || int_arg(args[2], "pos", LLONG_MIN, LLONG_MAX, &pos) < 0 ||
        int_arg(args[3], "size", LLONG_MIN, LLONG_MAX, &size) < 0 || bytes_arg(args[4], "frame", &data, &n) < 0)
        return NULL;
    if (n < 8 || pos < 0 || pos > size || n > size - pos) {
        PyErr_SetString(PyExc_ValueError, "the frame does not fit in the journal");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_WRITABLE) < 0) return NULL;
    if (view.len < size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the mapping is smaller than the journal's size");
        return NULL;
    }
    char *mm = (char *)view.buf;
    off_t fsize = lseek((int)fd, 0, SEEK_END);
    if (fsize < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        PyBuffer_Release(&view);
        return NULL;
    }
    int r;
    if (fsize < (off_t)size) {
        r = -1;
    } else if (!guard_on) {
        r = mm[0] == 'G' ? 0 : -1;
        if (r == 0) {
            memcpy(mm + pos + 8, data + 8, (size_t)(n - 8));
            memcpy(mm + pos, data, 8);
        }
    } else {
        int g = guarded_copy(mm, view.len, pos, data, n);
        r = g == 0 ? 0 : g == 1 ? -1 : -2;
    }
    PyBuffer_Release(&view);
    return PyLong_FromLong(r);
}

/* The line of one record: head + "prev":"<prev>","seq":<seq>, + tail, then ,"hash":"<hex>"[,"tag":"<hex>"]}\n */
static PyObject *chain_line(const char *head, Py_ssize_t lh, const char *tail, Py_ssize_t lt, const char *prev,
                            long long seq, PyObject *rkey) {
    char seqbuf[24];
    int ls = snprintf(seqbuf, sizeof seqbuf, "%lld", seq);
    /* canon = head + "prev":" (8) + prev (64) + ","seq": (8) + seq + , (1) + tail */
    Py_ssize_t lcanon = lh + 8 + 64 + 8 + ls + 1 + lt;
    Py_ssize_t lline = lcanon - 1 + 9 + 64 + (rkey != Py_None ? 9 + 32 : 0) + 3;
    PyObject *line = PyBytes_FromStringAndSize(NULL, lline);
    if (line == NULL) return NULL;
    char *p = PyBytes_AS_STRING(line), *start = p;
    memcpy(p, head, lh);
    p += lh;
    memcpy(p, "\"prev\":\"", 8);
    p += 8;
    memcpy(p, prev, 64);
    p += 64;
    memcpy(p, "\",\"seq\":", 8);
    p += 8;
    memcpy(p, seqbuf, ls);
    p += ls;
    *p++ = ',';
    memcpy(p, tail, lt);
    p += lt;
    PyObject *d = digest_of(sha256_ctor, start, lcanon, NULL, NULL, 0);
    if (d == NULL || PyBytes_GET_SIZE(d) != 32) {
        Py_XDECREF(d);
        Py_DECREF(line);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unexpected digest size");
        return NULL;
    }
    p = start + lcanon - 1; /* over the closing brace */
    memcpy(p, ",\"hash\":\"", 9);
    p += 9;
    char *hex = p;
    const unsigned char *dg = (const unsigned char *)PyBytes_AS_STRING(d);
    for (int i = 0; i < 32; i++) {
        *p++ = HEX[dg[i] >> 4];
        *p++ = HEX[dg[i] & 15];
    }
    Py_DECREF(d);
    if (rkey != Py_None) {
        PyObject *t = keyed_blake2b(hex, 64, rkey);
        if (t == NULL || PyBytes_GET_SIZE(t) != TAG_SIZE) {
            Py_XDECREF(t);
            Py_DECREF(line);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unexpected tag size");
            return NULL;
        }
        memcpy(p, "\",\"tag\":\"", 9);
        p += 9;
        const unsigned char *tg = (const unsigned char *)PyBytes_AS_STRING(t);
        for (int i = 0; i < TAG_SIZE; i++) {
            *p++ = HEX[tg[i] >> 4];
            *p++ = HEX[tg[i] & 15];
        }
        Py_DECREF(t);
    }
    memcpy(p, "\"}\n", 3);
    return line;
}

/* chain(bodies, i, seq, prev, rkey, max_line) -> (done, data, prev, type)
 *
 * Chains ``bodies[i:]`` after ``seq`` and ``prev`` (64 ASCII hex bytes) while they are PreparedIntent or
 * PreparedOutcome records whose templated line fits ``max_line``: each gets its ``seq`` and is marked ``written``.
 * Returns how many were chained, their lines joined, the last hash and the last record's type. It stops, without
 * marking it written, at the first body it cannot chain (another type, a template that raises TypeError or
 * ValueError, an oversized line, a seq past 2**63 - 1): the caller takes that one the general way. A ``prev`` of
 * another length, or an ``rkey`` hashlib refuses, chains nothing: the caller's loop does what the Python code does
 * with them.
 *
 * A body's parts() is Python code, and so is the release of the values its setattr replaces: either may change a
 * list of ``bodies`` or drop what it held. So the length is read again for each body, and each body is held by a
 * reference of our own while it is used. */
static PyObject *chain(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "chain() takes 6 arguments");
        return NULL;
    }
    if (intent_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "bind() was not called");
        return NULL;
    }
    PyObject *bodies = args[0], *rkey = args[4];
    /* another sequence (a list subclass too: its own __getitem__ is what the Python loop reads): the general way */
    if (!PyList_CheckExact(bodies) && !PyTuple_CheckExact(bodies))
        return Py_BuildValue("(ny#OO)", (Py_ssize_t)0, "", (Py_ssize_t)0, args[3], Py_None);
    long long i, seq, max_line;
    if (int_arg(args[1], "i", 0, PY_SSIZE_T_MAX, &i) < 0 || int_arg(args[2], "seq", LLONG_MIN, LLONG_MAX, &seq) < 0 ||
        int_arg(args[5], "max_line", PY_SSIZE_T_MIN, PY_SSIZE_T_MAX, &max_line) < 0)
        return NULL;
    char *prevp;
    Py_ssize_t lprev;
    if (bytes_arg(args[3], "prev", &prevp, &lprev) < 0) return NULL;
    if (rkey != Py_None && !PyBytes_Check(rkey)) {
        PyErr_SetString(PyExc_TypeError, "rkey must be bytes or None");
        return NULL;
    }
    /* a head read from a damaged store may carry a hash of another length; an over-long key fails in hashlib */
    if (lprev != 64 || (rkey != Py_None && PyBytes_GET_SIZE(rkey) > MAX_KEY))
        return Py_BuildValue("(ny#OO)", (Py_ssize_t)0, "", (Py_ssize_t)0, args[3], Py_None);
    char prev[64];
    memcpy(prev, prevp, 64);
    Py_ssize_t hash_back = rkey != Py_None ? 44 : 3;
    PyObject *lines = PyList_New(0);
    if (lines == NULL) return NULL;
    PyObject *last_type = Py_None;
    Py_INCREF(last_type);
    Py_ssize_t done = 0;
    PyObject *body = NULL; /* the body being chained, our reference */
    for (; i < PySequence_Fast_GET_SIZE(bodies); i++) {
        PyTypeObject *t = Py_TYPE(PySequence_Fast_GET_ITEM(bodies, i));
        if (((PyObject *)t != intent_type && (PyObject *)t != outcome_type) || seq == LLONG_MAX)
            break;
        body = Py_NewRef(PySequence_Fast_GET_ITEM(bodies, i));
        seq++;
        PyObject *seqobj = PyLong_FromLongLong(seq);
        if (seqobj == NULL) goto fail;
        /* its seq first: outcomes later in this batch name it (as _write_many does) */
        int set = PyObject_SetAttr(body, str_seq, seqobj);
        Py_DECREF(seqobj);
        if (set < 0) goto fail;
        PyObject *pieces = (PyObject *)t == intent_type ? PyObject_GetAttr(body, str_pieces)
                                                        : PyObject_CallMethodNoArgs(body, str_parts);
        if (pieces == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear(); /* (orjson's JSONEncodeError is a TypeError) the general path takes it */
                break;
            }
            goto fail;
        }
        if (!PyTuple_Check(pieces) || PyTuple_GET_SIZE(pieces) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pieces, 0)) ||
            !PyBytes_Check(PyTuple_GET_ITEM(pieces, 1))) {
            Py_DECREF(pieces); /* (bytearray pieces, say) the Python loop formats them */
            break;
        }
        PyObject *h = PyTuple_GET_ITEM(pieces, 0), *tl = PyTuple_GET_ITEM(pieces, 1);
        PyObject *line = chain_line(PyBytes_AS_STRING(h), PyBytes_GET_SIZE(h), PyBytes_AS_STRING(tl),
                                    PyBytes_GET_SIZE(tl), prev, seq, rkey);
        Py_DECREF(pieces);
        if (line == NULL) goto fail;
        if (PyBytes_GET_SIZE(line) > (Py_ssize_t)max_line) {
            Py_DECREF(line);
            break;
        }
        if (PyObject_SetAttr(body, str_written, Py_True) < 0 || PyList_Append(lines, line) < 0) {
            Py_DECREF(line);
            goto fail;
        }
        memcpy(prev, PyBytes_AS_STRING(line) + PyBytes_GET_SIZE(line) - hash_back - 64, 64);
        Py_DECREF(line);
        PyObject *ty = PyObject_GetAttr(body, str_type);
        if (ty == NULL) goto fail;
        Py_SETREF(last_type, ty);
        Py_CLEAR(body);
        done++;
    }
    Py_CLEAR(body); /* the body it stopped at, if any */
    PyObject *data;
    if (PyList_GET_SIZE(lines) == 1) {
        data = PyList_GET_ITEM(lines, 0);
        Py_INCREF(data);
    } else {
        Py_ssize_t total = 0, k, m = PyList_GET_SIZE(lines);
        for (k = 0; k < m; k++) total += PyBytes_GET_SIZE(PyList_GET_ITEM(lines, k));
        data = PyBytes_FromStringAndSize(NULL, total);
        if (data == NULL) goto fail;
        char *q = PyBytes_AS_STRING(data);
        for (k = 0; k < m; k++) {
            PyObject *l = PyList_GET_ITEM(lines, k);
            memcpy(q, PyBytes_AS_STRING(l), PyBytes_GET_SIZE(l));
            q += PyBytes_GET_SIZE(l);
        }
    }
    Py_DECREF(lines);
    PyObject *res = Py_BuildValue("(nNy#N)", done, data, prev, (Py_ssize_t)64, last_type);
    return res;
fail:
    Py_XDECREF(body);
    Py_DECREF(lines);
    Py_DECREF(last_type);
    return NULL;
}

/* bind(PreparedIntent, PreparedOutcome): the record classes chain() takes the fast way */
static PyObject *bind(PyObject *self, PyObject *args) {
    PyObject *it, *ot;
    if (!PyArg_ParseTuple(args, "OO", &it, &ot)) return NULL;
    Py_XSETREF(intent_type, Py_NewRef(it));
    Py_XSETREF(outcome_type, Py_NewRef(ot));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL, "Copy one journal frame into the mapping."},
    {"copy_frame", (PyCFunction)(void (*)(void))copy_frame, METH_FASTCALL, "Copy a built frame into the mapping."},
    {"chain", (PyCFunction)(void (*)(void))chain, METH_FASTCALL, "Chain a run of prepared records."},
    {"bind", bind, METH_VARARGS, "Name the prepared record classes."},
    {"guard_install", guard_install, METH_NOARGS, "Install the SIGBUS guard of the copies into journal mappings."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "governed_db._speedups",
                                    "Native helpers for the audit record's statement path.", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *hashlib = PyImport_ImportModule("hashlib");
    if (hashlib == NULL) return NULL;
    sha256_ctor = PyObject_GetAttrString(hashlib, "sha256");
    blake2b_ctor = PyObject_GetAttrString(hashlib, "blake2b");
    Py_DECREF(hashlib);
    if (sha256_ctor == NULL || blake2b_ctor == NULL) return NULL;
    PyObject *zlib = PyImport_ImportModule("zlib");
    if (zlib == NULL) return NULL;
    crc32_func = PyObject_GetAttrString(zlib, "crc32");
    Py_DECREF(zlib);
    if (crc32_func == NULL) return NULL;
    str_digest = PyUnicode_InternFromString("digest");
    str_key = PyUnicode_InternFromString("key");
    str_digest_size = PyUnicode_InternFromString("digest_size");
    str_pieces = PyUnicode_InternFromString("pieces");
    str_parts = PyUnicode_InternFromString("parts");
    str_seq = PyUnicode_InternFromString("seq");
    str_written = PyUnicode_InternFromString("written");
    str_type = PyUnicode_InternFromString("type");
    int_16 = PyLong_FromLong(16);
    if (!str_digest || !str_key || !str_digest_size || !str_pieces || !str_parts || !str_seq || !str_written ||
        !str_type || !int_16)
        return NULL;
    return PyModule_Create(&module);
}
