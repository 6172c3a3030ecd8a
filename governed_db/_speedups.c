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
#include <structmember.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static PyObject *sha256_ctor;   /* hashlib.sha256 */
static PyObject *blake2b_ctor;  /* hashlib.blake2b */
static PyObject *crc32_func;    /* zlib.crc32 */
/* zlib's crc32 (the function zlib.crc32 calls), when found among the loaded objects: the journal frame's CRC-32
 * without a memoryview, a call through Python and an int per frame */
typedef unsigned long (*crc32_fn)(unsigned long, const unsigned char *, unsigned int);
static crc32_fn native_crc32;

static PyObject *str_digest, *str_key, *str_digest_size, *str_pieces, *str_parts, *str_seq, *str_written,
    *str_type, *int_16;
static PyObject *intent_type, *outcome_type;  /* set by bind() */

static const char HEX[] = "0123456789abcdef";

/* the exception being raised, taken (NULL if none), and put back: PyErr_GetRaisedException on 3.12+ */
static inline PyObject *PyErr_GetRaisedException_compat(void) {
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (t == NULL) return NULL;
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
}

static inline void PyErr_SetRaisedException_compat(PyObject *v) {
    if (v == NULL) return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(v)), v, PyException_GetTraceback(v));
}

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
 * SIGBUS when touched: the default action kills the process, with the intents it held only in memory. A size
 * check (lseek) before each copy would still leave a truncation landing between the check and the copy, and
 * costs a system call a statement. So the copy runs under a guard: a SIGBUS whose address lies in the mapping being copied into, raised in
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

/* Whether the journal ``fd`` is shorter than its mapping's ``size`` (someone truncated it): 1 if so, 0 if not, -1
 * with OSError set (os.lseek's) when its size cannot be read. Only without the SIGBUS guard is the size read before
 * each copy (docs/decisions/0411-no-size-check-a-statement-under-the-copy-guard.md): with it, a copy into a page
 * the truncation took away is caught as it happens (-2), a file cut and grown back by the magic check, and a cut
 * within the page the copy lands in — the one case neither sees, whose bytes past the new end are not kept — is
 * found at the next drain, which writes every record it held to the store from memory, as after any truncation. */
static int file_cut(long long fd, long long size) {
    if (guard_on) { /* no system call: a descriptor that cannot be one fails as lseek would have failed on it */
        if (fd >= 0) return 0;
        errno = EBADF;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    off_t fsize = lseek((int)fd, 0, SEEK_END);
    if (fsize < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return fsize < (off_t)size;
}

/* The body of frame() once its arguments are converted and checked: returns the offset past the frame, 0, -1 or
 * -2 as frame() does, or -3 with an exception set. */
static long long put_frame(PyObject *mmobj, long long fd, long long pos, long long size, long long epoch,
                           long long number, long long floor_, const char *a, Py_ssize_t la, const char *b,
                           Py_ssize_t lb, int with_outcome, const char *pre, Py_ssize_t lpre, const char *tail,
                           Py_ssize_t ltail, long long iseq, long long iframe, PyObject *jkey, long long plen,
                           long long end) {
    Py_buffer view;
    if (PyObject_GetBuffer(mmobj, &view, PyBUF_WRITABLE) < 0) {
        /* a read-only or non-contiguous buffer: the TypeError the Python code's slice assignment raises */
        if (PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "mm must be a writable buffer, not %.100s", Py_TYPE(mmobj)->tp_name);
        }
        return -3;
    }
    if (view.len < size) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the mapping is smaller than the journal's size");
        return -3;
    }
    char *mm = (char *)view.buf;
    int cut = file_cut(fd, size); /* with the guard, no size check a statement: see file_cut() */
    if (cut != 0) {
        PyBuffer_Release(&view);
        return cut < 0 ? -3 : -1;
    }
    /* built here, hashed here (hashlib may let other threads run while it reads), then copied under the guard */
    char local[2048], *buf = local;
    if (8 + plen > (long long)sizeof local) {
        buf = PyMem_Malloc((size_t)(8 + plen));
        if (buf == NULL) {
            PyBuffer_Release(&view);
            PyErr_NoMemory();
            return -3;
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
    long long result = -3;
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
    unsigned long crcv;
    if (native_crc32 != NULL && plen <= 0xFFFFFFFFLL) {
        crcv = native_crc32(0, (const unsigned char *)buf + 8, (unsigned int)plen);
    } else {
        PyObject *cview = PyMemoryView_FromMemory(buf + 8, (Py_ssize_t)plen, PyBUF_READ);
        PyObject *crc = cview != NULL ? PyObject_CallOneArg(crc32_func, cview) : NULL;
        Py_XDECREF(cview);
        crcv = crc != NULL ? PyLong_AsUnsignedLong(crc) : 0;
        Py_XDECREF(crc);
        if (PyErr_Occurred()) goto done; /* nothing copied: the frame does not count */
    }
    put_u32(buf, (uint32_t)plen);
    put_u32(buf + 4, (uint32_t)crcv);
    if (!guard_on) {
        /* no guard (not installed): the copy as it was, after the same magic check */
        if (mm[0] != 'G') {
            result = -1;
            goto done;
        }
        memcpy(mm + pos + 8, buf + 8, (size_t)plen);
        memcpy(mm + pos, buf, 8);
        result = end;
        goto done;
    }
    switch (guarded_copy(mm, view.len, pos, buf, 8 + plen)) {
    case 0: result = end; break;
    case 1: result = -1; break;
    default: result = -2; break;
    }
done:
    if (buf != local) PyMem_Free(buf);
    PyBuffer_Release(&view);
    return result;
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
 * (without the guard: file_cut()) OSError (as os.lseek does); nothing is copied then. The frame is built and hashed in this function's own memory
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

    long long r = put_frame(args[0], fd, pos, size, epoch, number, floor_, a, la, b, lb, with_outcome, pre, lpre,
                            tail, ltail, iseq, iframe, jkey, plen, end);
    return r == -3 ? NULL : PyLong_FromLongLong(r);
}

/* copy_frame(mm, fd, pos, size, frame) -> 0, -1 or -2
 *
 * A frame built in Python (its head, then its payload: Journal.put) copied to ``pos`` of the mapping ``mm`` as
 * frame() copies its own: after the magic is checked, under the SIGBUS guard (without the guard, after the file's
 * size too: lseek on ``fd``, see file_cut()).
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
    int r, cut = file_cut(fd, size);
    if (cut < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (cut) {
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
/* -- SHA-256 without the GIL ---------------------------------------------------------------------------------
 *
 * hashlib's SHA-256 is OpenSSL's, reached through a hashlib object per record and run with the GIL held (hashlib
 * lets go of it only past 2 KiB). OpenSSL's one-shot SHA256() is the same digest from the same library — the
 * libcrypto that hashlib's _hashlib module loaded into this process — found among the loaded objects and opened
 * again (RTLD_NOLOAD: nothing new is loaded, nothing is searched for on disk), then checked against a known answer.
 * With it, a run of unkeyed records is chained with no hashlib object per record and with the GIL released, so the
 * application's other threads run meanwhile (docs/decisions/0396-native-statement-records.md: ~0.3 µs a
 * statement). Without it (hashlib built on another library, a static build), hashlib is used as before. */
typedef unsigned char *(*sha256_fn)(const unsigned char *, size_t, unsigned char *);
static sha256_fn native_sha256;
/* OpenSSL's SHA256_Init/Update/Final, when found: OpenSSL 3's one-shot SHA256() fetches the digest's
 * implementation from its provider on every call (a lock, a reference taken and dropped: ~1/3 of its cost for a
 * record); these run the same compression function directly. The context is 112 bytes; room for more is kept. */
typedef int (*sha256_init_fn)(void *);
typedef int (*sha256_update_fn)(void *, const void *, size_t);
typedef int (*sha256_final_fn)(unsigned char *, void *);
static sha256_init_fn sha256_init;
static sha256_update_fn sha256_update;
static sha256_final_fn sha256_final;

static unsigned char *sha256_parts(const unsigned char *d, size_t n, unsigned char *md) {
    long long ctx[64]; /* SHA256_CTX, aligned */
    if (!sha256_init(ctx) || !sha256_update(ctx, d, n) || !sha256_final(md, ctx)) return NULL;
    return md;
}

struct lib_search {
    const char *needle, *path;
};

static int find_lib(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct lib_search *s = data;
    const char *name = info->dlpi_name;
    if (name != NULL && strstr(name, s->needle) != NULL) {
        s->path = name;
        return 1;
    }
    return 0;
}

/* a handle on the loaded object whose path holds ``needle`` (RTLD_NOLOAD: nothing is loaded or searched for) */
static void *loaded_lib(const char *needle) {
    struct lib_search s = {needle, NULL};
    dl_iterate_phdr(find_lib, &s);
    return s.path == NULL ? NULL : dlopen(s.path, RTLD_NOW | RTLD_NOLOAD | RTLD_LOCAL);
}

static void load_native_crc32(void) {
    void *h = loaded_lib("/libz.so");
    if (h == NULL) return;
    crc32_fn f = (crc32_fn)dlsym(h, "crc32");
    if (f == NULL || f(0, (const unsigned char *)"abc", 3) != 0x352441C2UL ||
        f(0, (const unsigned char *)"123456789", 9) != 0xCBF43926UL) {
        dlclose(h);
        return;
    }
    native_crc32 = f; /* the handle is kept, as for libcrypto below */
}

static void load_native_sha256(void) {
    void *h = loaded_lib("/libcrypto.so");
    if (h == NULL) return;
    sha256_fn f = (sha256_fn)dlsym(h, "SHA256");
    sha256_init = (sha256_init_fn)dlsym(h, "SHA256_Init");
    sha256_update = (sha256_update_fn)dlsym(h, "SHA256_Update");
    sha256_final = (sha256_final_fn)dlsym(h, "SHA256_Final");
    sha256_fn tries[2] = {sha256_init != NULL && sha256_update != NULL && sha256_final != NULL ? sha256_parts : NULL,
                          f};
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                          0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                          0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char md[32];
    for (int i = 0; i < 2; i++) {
        if (tries[i] != NULL && tries[i]((const unsigned char *)"abc", 3, md) == md && memcmp(md, abc, 32) == 0) {
            native_sha256 = tries[i]; /* the handle is kept: the library stays loaded for as long as this module */
            return;
        }
    }
    dlclose(h);
}

/* native_sha256(data) -> bytes or None: the digest chain() computes without the GIL (None: not available) */
static PyObject *native_sha256_py(PyObject *self, PyObject *arg) {
    Py_buffer b;
    if (native_sha256 == NULL) Py_RETURN_NONE;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    unsigned char md[32];
    Py_BEGIN_ALLOW_THREADS
    native_sha256((const unsigned char *)b.buf, (size_t)b.len, md);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    return PyBytes_FromStringAndSize((const char *)md, 32);
}

/* ``v`` in decimal at ``buf`` (at least 20 bytes of room), as "%lld" prints it, without printf's machinery (it was
 * ~2 % of a statement's time at the four numbers of its two records); the number of bytes written. */
static int put_ll(char *buf, long long v) {
    char tmp[24];
    int n = 0, neg = v < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int len = n + neg;
    char *p = buf;
    if (neg) *p++ = '-';
    while (n) *p++ = tmp[--n];
    return len;
}

/* ``s`` (NUL-terminated, a literal) at ``p``; past it */
#define PUT_LIT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) + sizeof(s) - 1)

static inline int seq_digits(long long seq, char *buf) { return put_ll(buf, seq); }

/* the length of the line of a record with pieces of ``lh`` and ``lt`` bytes at ``seq`` */
static Py_ssize_t line_size(Py_ssize_t lh, Py_ssize_t lt, long long seq, int keyed) {
    char seqbuf[24];
    int ls = seq_digits(seq, seqbuf);
    Py_ssize_t lcanon = lh + 8 + 64 + 8 + ls + 1 + lt;
    return lcanon - 1 + 9 + 64 + (keyed ? 9 + 32 : 0) + 3;
}

/* Write the canonical bytes of a record into ``p``: head + "prev":"<prev>","seq":<seq>, + tail. Returns their
 * length. Touches no Python object (runs without the GIL). */
static Py_ssize_t put_canon(char *p, const char *head, Py_ssize_t lh, const char *tail, Py_ssize_t lt,
                            const char *prev, long long seq) {
    char *start = p;
    char seqbuf[24];
    int ls = seq_digits(seq, seqbuf);
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
    return p - start;
}

static inline char *put_hex(char *p, const unsigned char *d, int n) {
    for (int i = 0; i < n; i++) {
        *p++ = HEX[d[i] >> 4];
        *p++ = HEX[d[i] & 15];
    }
    return p;
}

/* The line of one record into ``out`` (exactly line_size() bytes): its canonical bytes, then its hash (and tag)
 * in place of the closing brace. The digest: native (no Python) when ``nogil``, else hashlib (GIL held). Returns
 * 0, or -1 with an exception set (only when not ``nogil``). */
static int put_line(char *out, const char *head, Py_ssize_t lh, const char *tail, Py_ssize_t lt, const char *prev,
                    long long seq, PyObject *rkey, int nogil) {
    Py_ssize_t lcanon = put_canon(out, head, lh, tail, lt, prev, seq);
    unsigned char md[32];
    if (nogil) {
        native_sha256((const unsigned char *)out, (size_t)lcanon, md);
    } else {
        PyObject *d = digest_of(sha256_ctor, out, lcanon, NULL, NULL, 0);
        if (d == NULL || PyBytes_GET_SIZE(d) != 32) {
            Py_XDECREF(d);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unexpected digest size");
            return -1;
        }
        memcpy(md, PyBytes_AS_STRING(d), 32);
        Py_DECREF(d);
    }
    char *p = out + lcanon - 1; /* over the closing brace */
    memcpy(p, ",\"hash\":\"", 9);
    p += 9;
    char *hex = p;
    p = put_hex(p, md, 32);
    if (rkey != Py_None) {
        PyObject *t = keyed_blake2b(hex, 64, rkey);
        if (t == NULL || PyBytes_GET_SIZE(t) != TAG_SIZE) {
            Py_XDECREF(t);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "unexpected tag size");
            return -1;
        }
        memcpy(p, "\",\"tag\":\"", 9);
        p += 9;
        p = put_hex(p, (const unsigned char *)PyBytes_AS_STRING(t), TAG_SIZE);
        Py_DECREF(t);
    }
    memcpy(p, "\"}\n", 3);
    return 0;
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
 * Two passes: the first, with the GIL, reads each record's pieces (and gives it its seq: an outcome's pieces name
 * its intent's seq, which may be earlier in the same run); the second formats and hashes the lines into one bytes
 * object — without the GIL when the records are unkeyed and OpenSSL's SHA256() was found (above).
 *
 * A body's parts() is Python code, and so is the release of the values its setattr replaces: either may change a
 * list of ``bodies`` or drop what it held. So the length is read again for each body, and each body and its pieces
 * are held by references of our own until the end. */
/* defined with the statement path's records, below */
static Py_ssize_t off_written, off_cached, off_intent;
static PyObject *outcome_pieces(PyObject *out);
static PyObject *outcome_parts(PyObject *out);

typedef struct {
    PyObject *body, *pieces;
    Py_ssize_t size;
} run_item;

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
    int keyed = rkey != Py_None;
    char prev[64];
    memcpy(prev, prevp, 64);
    Py_ssize_t hash_back = keyed ? 44 : 3;
    long long first = seq;
    Py_ssize_t cap = 0, done = 0, total = 0;
    run_item *run = NULL;
    PyObject *body = NULL, *data = NULL, *last_type = NULL;
    /* pass 1: the records and their pieces */
    for (; i < PySequence_Fast_GET_SIZE(bodies); i++) {
        PyTypeObject *t = Py_TYPE(PySequence_Fast_GET_ITEM(bodies, i));
        if (((PyObject *)t != intent_type && (PyObject *)t != outcome_type) || seq == LLONG_MAX) break;
        body = Py_NewRef(PySequence_Fast_GET_ITEM(bodies, i));
        PyObject *seqobj = PyLong_FromLongLong(seq + 1);
        if (seqobj == NULL) goto fail;
        /* its seq first: outcomes later in this batch name it (as _write_many does) */
        int set = PyObject_SetAttr(body, str_seq, seqobj);
        Py_DECREF(seqobj);
        if (set < 0) goto fail;
        PyObject *pieces = (PyObject *)t == intent_type ? PyObject_GetAttr(body, str_pieces) : outcome_parts(body);
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
        Py_ssize_t size = line_size(PyBytes_GET_SIZE(PyTuple_GET_ITEM(pieces, 0)),
                                    PyBytes_GET_SIZE(PyTuple_GET_ITEM(pieces, 1)), seq + 1, keyed);
        if (size > (Py_ssize_t)max_line) {
            Py_DECREF(pieces);
            break;
        }
        if (done == cap) {
            Py_ssize_t ncap = cap ? cap * 2 : 64;
            run_item *grown = PyMem_Realloc(run, (size_t)ncap * sizeof *run);
            if (grown == NULL) {
                Py_DECREF(pieces);
                PyErr_NoMemory();
                goto fail;
            }
            run = grown;
            cap = ncap;
        }
        run[done].body = body;
        run[done].pieces = pieces;
        run[done].size = size;
        body = NULL;
        total += size;
        seq++;
        done++;
    }
    Py_CLEAR(body); /* the body it stopped at, if any */
    /* pass 2: the lines, hashed in order (each names the hash of the one before) */
    data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL) goto fail;
    char *q = PyBytes_AS_STRING(data);
    int nogil = !keyed && native_sha256 != NULL;
    int failed = 0;
    PyThreadState *save = nogil ? PyEval_SaveThread() : NULL;
    for (Py_ssize_t k = 0; k < done; k++) {
        PyObject *h = PyTuple_GET_ITEM(run[k].pieces, 0), *tl = PyTuple_GET_ITEM(run[k].pieces, 1);
        if (put_line(q, PyBytes_AS_STRING(h), PyBytes_GET_SIZE(h), PyBytes_AS_STRING(tl), PyBytes_GET_SIZE(tl), prev,
                     first + k + 1, rkey, nogil) < 0) {
            failed = 1;
            break;
        }
        memcpy(prev, q + run[k].size - hash_back - 64, 64);
        q += run[k].size;
    }
    if (save != NULL) PyEval_RestoreThread(save);
    if (failed) goto fail;
    /* pass 3: written, and the last record's type */
    for (Py_ssize_t k = 0; k < done; k++)
        if (PyObject_SetAttr(run[k].body, str_written, Py_True) < 0) goto fail;
    if (done > 0) {
        last_type = PyObject_GetAttr(run[done - 1].body, str_type);
        if (last_type == NULL) goto fail;
    } else {
        last_type = Py_NewRef(Py_None);
    }
    for (Py_ssize_t k = 0; k < done; k++) {
        Py_DECREF(run[k].body);
        Py_DECREF(run[k].pieces);
    }
    PyMem_Free(run);
    return Py_BuildValue("(nNy#N)", done, data, prev, (Py_ssize_t)64, last_type);
fail:
    Py_XDECREF(body);
    Py_XDECREF(data);
    Py_XDECREF(last_type);
    for (Py_ssize_t k = 0; k < done; k++) {
        Py_DECREF(run[k].body);
        Py_DECREF(run[k].pieces);
    }
    PyMem_Free(run);
    return NULL;
}

/* -- the statement path's records, built and queued in one call ----------------------------------------------
 *
 * journal_intent() and defer_outcome() are AuditStore.intent() and AuditStore.defer_outcome() on their usual path
 * (docs/decisions/0396-native-statement-records.md): the same record objects (the Python classes PreparedIntent
 * and PreparedOutcome, their slots filled here without running __init__), the same journal frame (put_frame), the
 * same changes to the Journal's and the store's state, under the same lock. Whenever the path is not the usual one
 * (no journal, a journal closed or bound to another store id, several records deferred, values the templates do
 * not take, a frame that does not fit or a file that may have been truncated) they change nothing and return None:
 * the caller then runs the Python code, which stays the reference. */
static Py_ssize_t off_written = -1, off_seq, off_frame, off_cached, off_pieces, off_attrs, off_end, off_intent,
                  off_span_id, off_status, off_status_message;
static PyObject *n_pid, *n_closed, *n_store_id, *n_lock, *n_deferred, *n_frames, *n_wpos, *n_mm, *n_fd, *n_size,
    *n_epoch, *n_jkey, *n_queue, *n_failing, *n_sseq, *n_sstore_id, *n_acquire, *n_release, *n_flush, *n_frame,
    *n_sfd, *n_flusher, *n_spid, *n_journal, *n_wake, *n_set, *n_defer, *n_unset, *n_append, *n_intent, *n_slock;

static inline PyObject **slot(PyObject *o, Py_ssize_t off) { return (PyObject **)((char *)o + off); }

static inline void slot_put(PyObject *o, Py_ssize_t off, PyObject *v) { Py_XSETREF(*slot(o, off), v); }

/* the offset of the slot ``name`` of ``cls`` (a member descriptor holding an object), or -1 */
static Py_ssize_t slot_offset(PyObject *cls, const char *name) {
    PyObject *d = PyObject_GetAttrString(cls, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY)) off = m->offset;
    }
    Py_DECREF(d);
    return off;
}

/* a new instance of a slotted record class, every slot unset (filled by the caller) */
static PyObject *new_record(PyObject *cls) {
    PyTypeObject *t = (PyTypeObject *)cls;
    return t->tp_alloc(t, 0);
}

/* ``v`` (an exact int in [0, 2**(8 * nbytes)), nbytes 8 or 16) as ``2 * nbytes`` lowercase hex digits, as Python's
 * ``%016x``/``%032x`` formats it; -1 (no exception) for anything else: the caller takes the Python path */
static int hex_of(PyObject *v, int nbytes, char *out) {
    if (!PyLong_CheckExact(v)) return -1;
    unsigned long long lo, hi = 0;
    if (nbytes == 8) {
        lo = PyLong_AsUnsignedLongLong(v); /* OverflowError when negative or too large */
    } else {
        PyObject *sixty_four = PyLong_FromLong(64);
        PyObject *h = sixty_four != NULL ? PyNumber_Rshift(v, sixty_four) : NULL;
        Py_XDECREF(sixty_four);
        if (h == NULL) {
            PyErr_Clear();
            return -1;
        }
        hi = PyLong_AsUnsignedLongLong(h);
        Py_DECREF(h);
        lo = PyErr_Occurred() ? 0 : PyLong_AsUnsignedLongLongMask(v);
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    unsigned char buf[16];
    int k = 0;
    if (nbytes == 16)
        for (int i = 7; i >= 0; i--) buf[k++] = (unsigned char)(hi >> (8 * i));
    for (int i = 7; i >= 0; i--) buf[k++] = (unsigned char)(lo >> (8 * i));
    put_hex(out, buf, nbytes);
    return 0;
}

/* an exact int that fits a C long long, or -1 (no exception): the Python path */
static int ll_of(PyObject *v, long long *out) {
    if (!PyLong_CheckExact(v)) return -1;
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow || (x == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    *out = x;
    return 0;
}

/* a dict's item (borrowed), or NULL without an exception when it is missing */
static inline PyObject *item(PyObject *d, PyObject *k) { return PyDict_GetItemWithError(d, k); }

/* The intent's pieces, as PreparedIntent.__init__ formats them; NULL without an exception: the Python path. */
static PyObject *intent_pieces(PyObject *head, PyObject *parent, PyObject *pid, PyObject *span_id, PyObject *time_ns,
                               PyObject *trace_id) {
    char phex[18], shex[16], thex[32];
    long long pidv, timev;
    if (!PyBytes_CheckExact(head) || ll_of(pid, &pidv) < 0 || ll_of(time_ns, &timev) < 0 ||
        hex_of(span_id, 8, shex) < 0 || hex_of(trace_id, 16, thex) < 0)
        return NULL;
    int lp = 4;
    if (parent == Py_None) {
        memcpy(phex, "null", 4);
    } else {
        if (hex_of(parent, 8, phex + 1) < 0) return NULL;
        phex[0] = phex[17] = '"';
        lp = 18;
    }
    char tail[48], *q = PUT_LIT(tail, ",\"pid\":");
    q += put_ll(q, pidv);
    *q++ = ',';
    int lt = (int)(q - tail);
    Py_ssize_t lh = PyBytes_GET_SIZE(head);
    PyObject *a = PyBytes_FromStringAndSize(NULL, lh + lp + lt);
    if (a == NULL) return NULL;
    char *p = PyBytes_AS_STRING(a);
    memcpy(p, PyBytes_AS_STRING(head), lh);
    memcpy(p + lh, phex, lp);
    memcpy(p + lh + lp, tail, lt);
    char bbuf[160];
    q = PUT_LIT(bbuf, "\"span_id\":\"");
    memcpy(q, shex, 16);
    q = PUT_LIT(q + 16, "\",\"time\":");
    q += put_ll(q, timev);
    q = PUT_LIT(q, ",\"trace_id\":\"");
    memcpy(q, thex, 32);
    q = PUT_LIT(q + 32, "\",\"type\":\"intent\",\"v\":2}");
    int lb = (int)(q - bbuf);
    PyObject *b = PyBytes_FromStringAndSize(bbuf, lb);
    if (b == NULL) {
        Py_DECREF(a);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, a);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

static PyObject *call0(PyObject *o, PyObject *name) { return PyObject_CallMethodNoArgs(o, name); }

/* journal_intent(store, journal, head, parent, pid, span_id, time_ns, trace_id, drain_at) -> PreparedIntent or None
 *
 * PreparedIntent(head, parent, pid, span_id, time_ns, trace_id) appended as AuditStore.append_intent appends it
 * through Journal.put_intent — the frame holding it after the one outcome deferred since the last intent, if any —
 * and the store drained (flush()) once ``drain_at`` records wait. None, with nothing changed: the caller runs the
 * Python code. The caller has checked the journal is this process's and the store is not failing. */
static PyObject *intent_into(PyObject *store, PyObject *j, PyObject *const *args, long long drain_at);

static PyObject *journal_intent(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "journal_intent() takes 9 arguments");
        return NULL;
    }
    if (off_written < 0) Py_RETURN_NONE;
    long long drain_at;
    if (int_arg(args[8], "drain_at", 0, LLONG_MAX, &drain_at) < 0) return NULL;
    return intent_into(args[0], args[1], args + 2, drain_at);
}

/* journal_intent() with its arguments converted: ``args`` = head, parent, pid, span_id, time_ns, trace_id */
static PyObject *intent_into(PyObject *store, PyObject *j, PyObject *const *args, long long drain_at) {
    PyObject *pieces = intent_pieces(args[0], args[1], args[2], args[3], args[4], args[5]);
    if (pieces == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    PyObject *jd = NULL, *sd = NULL, *lock = NULL, *rec = NULL, *out = NULL, *opieces = NULL, *result = NULL;
    int locked = 0;
    jd = PyObject_GenericGetDict(j, NULL);
    sd = jd != NULL ? PyObject_GenericGetDict(store, NULL) : NULL;
    if (sd == NULL) goto error;
    lock = item(jd, n_lock);
    if (lock == NULL) goto fallback;
    Py_INCREF(lock);
    PyObject *r = call0(lock, n_acquire);
    if (r == NULL) goto error;
    Py_DECREF(r);
    locked = 1;
    /* Journal.put_intent, with the lock held */
    PyObject *closed = item(jd, n_closed), *jsid = item(jd, n_store_id), *ssid = item(sd, n_sstore_id),
             *deferred = item(jd, n_deferred), *queue = item(jd, n_queue), *frames = item(jd, n_frames),
             *wpos = item(jd, n_wpos), *mm = item(jd, n_mm), *fd = item(jd, n_fd), *size = item(jd, n_size),
             *epoch = item(jd, n_epoch), *jkey = item(jd, n_jkey), *floor_ = item(sd, n_sseq);
    if (PyErr_Occurred()) goto error;
    if (closed != Py_False || jsid == NULL || ssid == NULL || !PyUnicode_CheckExact(jsid) ||
        !PyUnicode_CheckExact(ssid) || PyUnicode_Compare(jsid, ssid) != 0 || deferred == NULL ||
        !PyList_CheckExact(deferred) || queue == NULL || frames == NULL || wpos == NULL || mm == NULL || fd == NULL ||
        size == NULL || epoch == NULL || jkey == NULL || floor_ == NULL || PyList_GET_SIZE(deferred) > 1)
        goto fallback;
    if (PyErr_Occurred()) goto error;
    long long number, pos, fdv, sizev, epochv, floorv, iseq = -1, iframe = -1;
    if (ll_of(frames, &number) < 0 || ll_of(wpos, &pos) < 0 || ll_of(fd, &fdv) < 0 || ll_of(size, &sizev) < 0 ||
        ll_of(epoch, &epochv) < 0 || ll_of(floor_, &floorv) < 0 || number < 0 || epochv < 0 || epochv > UINT32_MAX ||
        fdv < INT_MIN || fdv > INT_MAX || (jkey != Py_None && (!PyBytes_CheckExact(jkey) ||
                                                                PyBytes_GET_SIZE(jkey) > MAX_KEY)))
        goto fallback;
    const char *pre = NULL, *tail = NULL;
    Py_ssize_t lpre = 0, ltail = 0;
    if (PyList_GET_SIZE(deferred) == 1) {
        out = Py_NewRef(PyList_GET_ITEM(deferred, 0));
        if ((PyObject *)Py_TYPE(out) != outcome_type) goto fallback;
        opieces = outcome_pieces(out);
        if (opieces == NULL && !PyErr_Occurred()) opieces = PyObject_CallMethodNoArgs(out, str_pieces);
        if (opieces == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear(); /* unusual values: the Python code leaves it deferred */
                goto fallback;
            }
            goto error;
        }
        if (!PyTuple_CheckExact(opieces) || PyTuple_GET_SIZE(opieces) != 2 ||
            !PyBytes_CheckExact(PyTuple_GET_ITEM(opieces, 0)) || !PyBytes_CheckExact(PyTuple_GET_ITEM(opieces, 1)))
            goto fallback;
        pre = PyBytes_AS_STRING(PyTuple_GET_ITEM(opieces, 0));
        lpre = PyBytes_GET_SIZE(PyTuple_GET_ITEM(opieces, 0));
        tail = PyBytes_AS_STRING(PyTuple_GET_ITEM(opieces, 1));
        ltail = PyBytes_GET_SIZE(PyTuple_GET_ITEM(opieces, 1));
        PyObject *intent = *slot(out, off_intent);
        if (intent == NULL) goto fallback;
        if (PyLong_CheckExact(intent)) {
            if (ll_of(intent, &iseq) < 0) goto fallback;
        } else {
            PyObject *sq = PyObject_GetAttr(intent, str_seq);
            PyObject *fr = sq != NULL ? PyObject_GetAttr(intent, n_frame) : NULL;
            int bad = fr == NULL || ll_of(sq, &iseq) < 0 || ll_of(fr, &iframe) < 0;
            Py_XDECREF(sq);
            Py_XDECREF(fr);
            if (PyErr_Occurred()) goto error;
            if (bad) goto fallback;
        }
    }
    PyObject *a = PyTuple_GET_ITEM(pieces, 0), *b = PyTuple_GET_ITEM(pieces, 1);
    Py_ssize_t la = PyBytes_GET_SIZE(a), lb = PyBytes_GET_SIZE(b);
    long long plen = START_SIZE + ITEM_SIZE + la + lb + (out != NULL ? ITEM_SIZE + lpre + ltail : 0) +
                     (jkey != Py_None ? TAG_SIZE : 0);
    if (la > UINT32_MAX || lb > UINT32_MAX || lpre > UINT32_MAX || ltail > UINT32_MAX || pos < 0 || pos > sizev ||
        sizev - pos < 8 || plen > sizev - pos - 8 || plen > UINT32_MAX)
        goto fallback; /* does not fit: the Python code writes it to the store */
    long long end = put_frame(mm, fdv, pos, sizev, epochv, number, floorv, PyBytes_AS_STRING(a), la,
                              PyBytes_AS_STRING(b), lb, out != NULL, pre, lpre, tail, ltail, iseq, iframe, jkey, plen,
                              pos + 8 + plen);
    if (end == -3) goto error;
    if (end <= 0) goto fallback; /* a truncation suspected, or caught: the Python code checks and decides */
    /* the frame counts: the state put_intent leaves */
    rec = new_record(intent_type);
    if (rec == NULL) goto error;
    PyObject *endobj = PyLong_FromLongLong(end);
    if (endobj == NULL || PyDict_SetItem(jd, n_wpos, endobj) < 0) {
        Py_XDECREF(endobj);
        goto error;
    }
    Py_DECREF(endobj);
    if (out != NULL) {
        PyObject *num = PyLong_FromLongLong(number);
        if (num == NULL) goto error;
        slot_put(out, off_cached, Py_NewRef(opieces));
        slot_put(out, off_frame, num);
        slot_put(out, off_written, Py_NewRef(Py_True));
        PyObject *r2 = PyObject_CallMethodOneArg(queue, n_append, out);
        if (r2 == NULL) goto error;
        Py_DECREF(r2);
        if (PyList_SetSlice(deferred, 0, PyList_GET_SIZE(deferred), NULL) < 0) goto error;
        number++;
    }
    PyObject *num = PyLong_FromLongLong(number), *next = PyLong_FromLongLong(number + 1);
    if (num == NULL || next == NULL || PyDict_SetItem(jd, n_frames, next) < 0) {
        Py_XDECREF(num);
        Py_XDECREF(next);
        goto error;
    }
    Py_DECREF(next);
    slot_put(rec, off_written, Py_NewRef(Py_True));
    slot_put(rec, off_seq, PyLong_FromLong(-1));
    slot_put(rec, off_frame, num);
    slot_put(rec, off_cached, Py_NewRef(Py_None));
    slot_put(rec, off_pieces, Py_NewRef(pieces));
    if (*slot(rec, off_seq) == NULL) goto error;
    PyObject *r3 = PyObject_CallMethodOneArg(queue, n_append, rec);
    if (r3 == NULL) goto error;
    Py_DECREF(r3);
    Py_ssize_t waiting = PyObject_Length(queue);
    if (waiting < 0) goto error;
    locked = 0;
    PyObject *r4 = call0(lock, n_release);
    if (r4 == NULL) goto error;
    Py_DECREF(r4);
    if (waiting >= drain_at) {
        /* a busy connection chains its journal into the store itself, a batch at a time (as append_intent) */
        PyObject *r5 = call0(store, n_flush);
        if (r5 == NULL) goto error;
        Py_DECREF(r5);
    }
    result = Py_NewRef(rec);
    goto done;
fallback:
    if (PyErr_Occurred()) goto error;
    result = Py_NewRef(Py_None);
    goto done;
error:
    result = NULL;
done:
    if (locked) {
        PyObject *exc = PyErr_GetRaisedException_compat();
        PyObject *r6 = call0(lock, n_release);
        if (r6 == NULL) {
            Py_XDECREF(exc);
            Py_CLEAR(result);
        } else {
            Py_DECREF(r6);
            PyErr_SetRaisedException_compat(exc);
        }
    }
    Py_XDECREF(rec);
    Py_XDECREF(out);
    Py_XDECREF(opieces);
    Py_XDECREF(lock);
    Py_XDECREF(jd);
    Py_XDECREF(sd);
    Py_DECREF(pieces);
    return result;
}

/* defer_outcome(store, late, end, intent, span_id, pid) -> PreparedOutcome
 *
 * The outcome of a statement that ended with no status set (the usual success): PreparedOutcome(dict(late) or {},
 * end=end, intent=intent, span_id=span_id, status="UNSET", status_message=None), deferred as AuditStore.defer
 * defers it (appended to the journal's deferred records, under its lock; the flusher woken once too many wait).
 * On any other path the record is built here and handed to store.defer() (Python). None, with nothing built or
 * changed, when ``late`` is not a dict: the caller runs the Python code. */
static PyObject *defer_outcome(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "defer_outcome() takes 7 arguments");
        return NULL;
    }
    if (off_written < 0 || !PyDict_CheckExact(args[1])) Py_RETURN_NONE;
    PyObject *store = args[0], *late = args[1];
    long long max_deferred;
    if (int_arg(args[6], "max_deferred", 0, LLONG_MAX, &max_deferred) < 0) return NULL;
    PyObject *out = new_record(outcome_type);
    if (out == NULL) return NULL;
    PyObject *attrs = PyDict_Copy(late);
    if (attrs == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    slot_put(out, off_written, Py_NewRef(Py_False));
    slot_put(out, off_seq, PyLong_FromLong(-1));
    slot_put(out, off_frame, PyLong_FromLong(-1));
    slot_put(out, off_cached, Py_NewRef(Py_None));
    slot_put(out, off_attrs, attrs);
    slot_put(out, off_end, Py_NewRef(args[2]));
    slot_put(out, off_intent, Py_NewRef(args[3]));
    slot_put(out, off_span_id, Py_NewRef(args[4]));
    slot_put(out, off_status, Py_NewRef(n_unset));
    slot_put(out, off_status_message, Py_NewRef(Py_None));
    if (*slot(out, off_seq) == NULL || *slot(out, off_frame) == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    /* AuditStore.defer: the journal's deferred list, when the store is open in this process with a flusher */
    PyObject *sd = PyObject_GenericGetDict(store, NULL);
    if (sd == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    PyObject *sfd = item(sd, n_sfd), *flusher = item(sd, n_flusher), *spid = item(sd, n_spid),
             *j = item(sd, n_journal);
    long long fdv, pidv;
    int fast = !PyErr_Occurred() && sfd != NULL && flusher != NULL && flusher != Py_None && spid != NULL &&
               j != NULL && j != Py_None && ll_of(sfd, &fdv) == 0 && fdv >= 0 && ll_of(spid, &pidv) == 0 &&
               PyLong_CheckExact(args[5]) && PyObject_RichCompareBool(spid, args[5], Py_EQ) == 1;
    if (PyErr_Occurred()) {
        Py_DECREF(sd);
        Py_DECREF(out);
        return NULL;
    }
    PyObject *jd = NULL, *lock = NULL;
    int wake = 0;
    if (fast) {
        Py_INCREF(j);
        jd = PyObject_GenericGetDict(j, NULL);
        Py_DECREF(j);
        lock = jd != NULL ? item(jd, n_lock) : NULL;
        if (lock == NULL) goto fail_or_slow;
        Py_INCREF(lock);
        PyObject *r = call0(lock, n_acquire);
        if (r == NULL) goto fail;
        Py_DECREF(r);
        PyObject *closed = item(jd, n_closed), *deferred = item(jd, n_deferred);
        int ok = closed == Py_False && deferred != NULL && PyList_CheckExact(deferred) && !PyErr_Occurred();
        if (ok && PyList_Append(deferred, out) < 0) ok = -1;
        if (ok == 1) wake = PyList_GET_SIZE(deferred) >= max_deferred;
        PyObject *exc = PyErr_GetRaisedException_compat();
        PyObject *r2 = call0(lock, n_release);
        if (r2 == NULL) {
            Py_XDECREF(exc);
            goto fail;
        }
        Py_DECREF(r2);
        PyErr_SetRaisedException_compat(exc);
        if (ok < 0 || PyErr_Occurred()) goto fail;
        if (ok == 1) {
            if (wake) {
                PyObject *w = item(sd, n_wake);
                PyObject *r3 = w != NULL ? PyObject_CallMethodNoArgs(w, n_set) : NULL;
                if (r3 == NULL) goto fail_or_slow;
                Py_DECREF(r3);
            }
            goto ok;
        }
    }
fail_or_slow:
    if (PyErr_Occurred()) goto fail;
    {
        PyObject *r4 = PyObject_CallMethodOneArg(store, n_defer, out);
        if (r4 == NULL) goto fail;
        Py_DECREF(r4);
    }
ok:
    Py_XDECREF(lock);
    Py_XDECREF(jd);
    Py_DECREF(sd);
    return out;
fail:
    Py_XDECREF(lock);
    Py_XDECREF(jd);
    Py_DECREF(sd);
    Py_DECREF(out);
    return NULL;
}

/* -- an outcome's pieces, and a result's counts folded into it --------------------------------------------------
 *
 * templates(dumps, option, keys) hands over orjson.dumps with the records' option (sorted keys) and the names of
 * the four attributes a result's counts fold into (semconv). */
static PyObject *t_dumps, *t_option, *k_returned, *k_rows, *k_cells, *k_columns;

static PyObject *templates(PyObject *self, PyObject *args) {
    PyObject *dumps, *option, *keys;
    if (!PyArg_ParseTuple(args, "OOO!", &dumps, &option, &PyTuple_Type, &keys)) return NULL;
    if (PyTuple_GET_SIZE(keys) != 4) {
        PyErr_SetString(PyExc_ValueError, "templates() takes the 4 attribute names results fold into");
        return NULL;
    }
    for (int k = 0; k < 4; k++)
        if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(keys, k))) {
            PyErr_SetString(PyExc_TypeError, "the attribute names must be str");
            return NULL;
        }
    Py_XSETREF(t_dumps, Py_NewRef(dumps));
    Py_XSETREF(t_option, Py_NewRef(option));
    Py_XSETREF(k_returned, Py_NewRef(PyTuple_GET_ITEM(keys, 0)));
    Py_XSETREF(k_rows, Py_NewRef(PyTuple_GET_ITEM(keys, 1)));
    Py_XSETREF(k_cells, Py_NewRef(PyTuple_GET_ITEM(keys, 2)));
    Py_XSETREF(k_columns, Py_NewRef(PyTuple_GET_ITEM(keys, 3)));
    Py_RETURN_NONE;
}

/* bytes + bytes, a new reference */
static PyObject *concat3(const char *a, Py_ssize_t la, const char *b, Py_ssize_t lb, const char *c, Py_ssize_t lc) {
    PyObject *r = PyBytes_FromStringAndSize(NULL, la + lb + lc);
    if (r == NULL) return NULL;
    char *p = PyBytes_AS_STRING(r);
    memcpy(p, a, la);
    memcpy(p + la, b, lb);
    memcpy(p + la + lb, c, lc);
    return r;
}

/* PreparedOutcome.pieces() of ``out`` on its usual shape (a dict of attributes orjson takes, an int end that fits,
 * a 64-bit span id, status UNSET, OK or ERROR without a message); NULL without an exception otherwise (the caller
 * runs the Python method), NULL with one on a memory error. */
static PyObject *outcome_pieces(PyObject *out) {
    if (t_dumps == NULL || off_written < 0) return NULL;
    PyObject *attrs = *slot(out, off_attrs), *end = *slot(out, off_end), *span = *slot(out, off_span_id),
             *status = *slot(out, off_status), *msg = *slot(out, off_status_message);
    long long endv;
    char shex[16];
    if (attrs == NULL || end == NULL || span == NULL || status == NULL || msg == NULL || !PyDict_CheckExact(attrs) ||
        ll_of(end, &endv) < 0 || hex_of(span, 8, shex) < 0 || !PyUnicode_CheckExact(status) ||
        (msg != Py_None && !(PyUnicode_CheckExact(msg) && PyUnicode_GET_LENGTH(msg) == 0)))
        return NULL;
    const char *st;
    if (PyUnicode_CompareWithASCIIString(status, "UNSET") == 0) st = "\"UNSET\"";
    else if (PyUnicode_CompareWithASCIIString(status, "OK") == 0) st = "\"OK\"";
    else if (PyUnicode_CompareWithASCIIString(status, "ERROR") == 0) st = "\"ERROR\"";
    else return NULL;
    PyObject *js;
    if (PyDict_GET_SIZE(attrs) == 0) {
        js = PyBytes_FromStringAndSize("{}", 2);
    } else {
        static PyObject *kwnames = NULL;
        if (kwnames == NULL) { /* interned: orjson matches keyword names by identity */
            PyObject *name = PyUnicode_InternFromString("option");
            if (name == NULL) return NULL;
            kwnames = PyTuple_Pack(1, name);
            Py_DECREF(name);
            if (kwnames == NULL) return NULL;
        }
        PyObject *argv[2] = {attrs, t_option};
        js = PyObject_Vectorcall(t_dumps, argv, 1, kwnames);
        if (js == NULL) {
            if (PyErr_ExceptionMatches(PyExc_TypeError) || PyErr_ExceptionMatches(PyExc_ValueError)) PyErr_Clear();
            return NULL;
        }
        if (!PyBytes_CheckExact(js)) {
            Py_DECREF(js);
            return NULL;
        }
    }
    if (js == NULL) return NULL;
    char mid[48], tl[96];
    char *q = PUT_LIT(mid, ",\"end\":");
    q += put_ll(q, endv);
    q = PUT_LIT(q, ",\"intent\":");
    int lm = (int)(q - mid);
    q = PUT_LIT(tl, "\"span_id\":\"");
    memcpy(q, shex, 16);
    q = PUT_LIT(q + 16, "\",\"status\":");
    size_t lst = strlen(st);
    memcpy(q, st, lst);
    q = PUT_LIT(q + lst, ",\"type\":\"outcome\",\"v\":2}");
    int lt = (int)(q - tl);
    PyObject *pre = concat3("{\"attrs\":", 9, PyBytes_AS_STRING(js), PyBytes_GET_SIZE(js), mid, lm);
    Py_DECREF(js);
    if (pre == NULL) return NULL;
    PyObject *tail = PyBytes_FromStringAndSize(tl, lt);
    if (tail == NULL) {
        Py_DECREF(pre);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(pre);
        Py_DECREF(tail);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, pre);
    PyTuple_SET_ITEM(t, 1, tail);
    return t;
}

/* outcome_pieces(out) -> (pre, tail) or None: what journal_intent() and chain() take for PreparedOutcome.pieces() */
static PyObject *outcome_pieces_py(PyObject *self, PyObject *out) {
    if (off_written < 0 || (PyObject *)Py_TYPE(out) != outcome_type) Py_RETURN_NONE;
    PyObject *t = outcome_pieces(out);
    if (t == NULL && !PyErr_Occurred()) Py_RETURN_NONE;
    return t;
}

/* PreparedOutcome.parts() of ``out``: its pieces (cached, or built by outcome_pieces) with its intent's seq after the
 * first; the Python method when the shape is another one (it raises what parts() raises). */
static PyObject *outcome_parts(PyObject *out) {
    if (off_written < 0) return PyObject_CallMethodNoArgs(out, str_parts);
    PyObject *cached = *slot(out, off_cached), *intent = *slot(out, off_intent), *pieces;
    if (cached != NULL && cached != Py_None) {
        /* ``self.cached or self.pieces()``: a cached value of another kind goes the Python way */
        if (!PyTuple_CheckExact(cached) || PyTuple_GET_SIZE(cached) != 2) return PyObject_CallMethodNoArgs(out, str_parts);
        pieces = Py_NewRef(cached);
    } else {
        pieces = outcome_pieces(out);
        if (pieces == NULL) return PyErr_Occurred() ? NULL : PyObject_CallMethodNoArgs(out, str_parts);
    }
    PyObject *pre = PyTuple_GET_ITEM(pieces, 0), *tail = PyTuple_GET_ITEM(pieces, 1);
    long long seq;
    int ok = PyBytes_CheckExact(pre) && PyBytes_CheckExact(tail) && intent != NULL;
    if (ok && PyLong_CheckExact(intent)) {
        ok = ll_of(intent, &seq) == 0;
    } else if (ok) {
        PyObject *sq = PyObject_GetAttr(intent, str_seq);
        ok = sq != NULL && ll_of(sq, &seq) == 0;
        Py_XDECREF(sq);
        if (PyErr_Occurred()) {
            Py_DECREF(pieces);
            return NULL;
        }
    }
    if (!ok || seq < 0) { /* the Python method decides (and raises ValueError for an intent not in the store) */
        Py_DECREF(pieces);
        return PyObject_CallMethodNoArgs(out, str_parts);
    }
    char num[24];
    int ln = put_ll(num, seq);
    num[ln++] = ',';
    PyObject *head = concat3(PyBytes_AS_STRING(pre), PyBytes_GET_SIZE(pre), num, ln, "", 0);
    PyObject *r = head != NULL ? PyTuple_Pack(2, head, tail) : NULL;
    Py_XDECREF(head);
    Py_DECREF(pieces);
    return r;
}

/* fold(store, outcome, rows, masked_cells, masked_columns) -> True, False or None
 *
 * AuditStore.amend on its usual path: a result's row counts added to its statement's deferred outcome, under the
 * journal's lock (the store's without a journal) — True; False once the outcome was written. None, with nothing
 * changed, for another kind of record: the caller runs the Python code. ``masked_columns``: a tuple (added as a
 * list when not empty). */
static PyObject *fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "fold() takes 5 arguments");
        return NULL;
    }
    PyObject *store = args[0], *out = args[1], *cols = args[4];
    if (off_written < 0 || k_returned == NULL || (PyObject *)Py_TYPE(out) != outcome_type ||
        !PyTuple_CheckExact(cols))
        Py_RETURN_NONE;
    PyObject *sd = PyObject_GenericGetDict(store, NULL);
    if (sd == NULL) return NULL;
    PyObject *j = item(sd, n_journal), *lock = NULL, *jd = NULL, *result = NULL;
    if (PyErr_Occurred()) goto done;
    if (j != NULL && j != Py_None) {
        Py_INCREF(j);
        jd = PyObject_GenericGetDict(j, NULL);
        Py_DECREF(j);
        if (jd == NULL) goto done;
        lock = item(jd, n_lock);
    } else {
        lock = item(sd, n_slock);
    }
    if (lock == NULL) {
        if (!PyErr_Occurred()) result = Py_NewRef(Py_None);
        goto done;
    }
    Py_INCREF(lock);
    PyObject *r = call0(lock, n_acquire);
    if (r == NULL) goto done;
    Py_DECREF(r);
    PyObject *written = *slot(out, off_written), *attrs = *slot(out, off_attrs);
    int w = written != NULL ? PyObject_IsTrue(written) : -1;
    if (w == 1) {
        result = Py_NewRef(Py_False);
    } else if (w == 0 && attrs != NULL && PyDict_CheckExact(attrs)) {
        PyObject *list = PyTuple_GET_SIZE(cols) ? PySequence_List(cols) : NULL;
        if ((PyTuple_GET_SIZE(cols) == 0 || list != NULL) && PyDict_SetItem(attrs, k_returned, args[2]) == 0 &&
            PyDict_SetItem(attrs, k_rows, args[2]) == 0 && PyDict_SetItem(attrs, k_cells, args[3]) == 0 &&
            (list == NULL || PyDict_SetItem(attrs, k_columns, list) == 0))
            result = Py_NewRef(Py_True);
        Py_XDECREF(list);
    } else if (!PyErr_Occurred()) {
        result = Py_NewRef(Py_None);
    }
    PyObject *exc = PyErr_GetRaisedException_compat();
    PyObject *r2 = call0(lock, n_release);
    if (r2 == NULL) {
        Py_XDECREF(exc);
        Py_CLEAR(result);
    } else {
        Py_DECREF(r2);
        PyErr_SetRaisedException_compat(exc);
    }
done:
    Py_XDECREF(lock);
    Py_XDECREF(jd);
    Py_DECREF(sd);
    return result;
}

/* -- the statement's span: started with its intent, ended with its outcome deferred ---------------------------------
 *
 * start_span() and end_span() are AuditOnlySpan(processor, name, CLIENT, start_ns, attrs, None, head) and
 * AuditOnlySpan.end() (governed_db/telemetry.py) on the statement path of the audit store alone: no SDK provider,
 * no current span in the context, a prepared intent head. The span's slots are filled as __init__ fills them; the
 * intent is journaled as AuditSpanProcessor.start_prepared -> AuditStore.intent journals it (journal_intent(), or
 * the Python method when that declines); a success's outcome deferred as end_prepared -> AuditStore.defer_outcome
 * (defer_outcome()). Anything else — a current span, a status set, a span without an intent — declines (None) or
 * goes to the Python methods, which stay the reference. span_config() hands over what they need. */
static PyObject *sp_type, *sp_random, *sp_time, *sp_ctx_get, *sp_span_key, *sp_kind, *sp_store_mod, *sp_proc_mod,
    *n_getrandbits, *n_time_ns, *n_store, *n_local, *n_error, *n_failed, *n_metrics, *n_observe_metrics, *n_ppid,
    *n_drain_at, *n_max_deferred, *n_native_intent, *n_native_outcome, *n_mwaiting, *n_next_check, *int_64,
    *int_128;
static Py_ssize_t so_base = -1, so_ctx, so_ended, so_processor, so_end_time, so_head, so_intent, so_kind, so_late,
                  so_name, so_outcome, so_parent, so_span_id, so_start_time, so_status, so_trace_id;

static PyObject *span_config(PyObject *self, PyObject *args) {
    PyObject *cls, *rnd, *tm, *ctx_get, *key, *kind, *store_mod, *proc_mod;
    if (!PyArg_ParseTuple(args, "OOOOOOOO", &cls, &rnd, &tm, &ctx_get, &key, &kind, &store_mod, &proc_mod))
        return NULL;
    so_base = -1;
    if (!PyType_Check(cls)) Py_RETURN_FALSE;
    const char *names[16] = {"_base", "_ctx", "_ended", "_processor", "end_time", "head", "intent", "kind", "late",
                             "name", "outcome", "parent", "span_id", "start_time", "status", "trace_id"};
    Py_ssize_t offs[16];
    for (int k = 0; k < 16; k++)
        if ((offs[k] = slot_offset(cls, names[k])) < 0) Py_RETURN_FALSE;
    Py_XSETREF(sp_type, Py_NewRef(cls));
    Py_XSETREF(sp_random, Py_NewRef(rnd));
    Py_XSETREF(sp_time, Py_NewRef(tm));
    Py_XSETREF(sp_ctx_get, Py_NewRef(ctx_get));
    Py_XSETREF(sp_span_key, Py_NewRef(key));
    Py_XSETREF(sp_kind, Py_NewRef(kind));
    Py_XSETREF(sp_store_mod, Py_NewRef(store_mod));
    Py_XSETREF(sp_proc_mod, Py_NewRef(proc_mod));
    so_ctx = offs[1], so_ended = offs[2], so_processor = offs[3], so_end_time = offs[4], so_head = offs[5];
    so_intent = offs[6], so_kind = offs[7], so_late = offs[8], so_name = offs[9], so_outcome = offs[10];
    so_parent = offs[11], so_span_id = offs[12], so_start_time = offs[13], so_status = offs[14];
    so_trace_id = offs[15];
    so_base = offs[0];
    Py_RETURN_TRUE;
}

/* ``random.getrandbits(bits)`` as the Python code calls it (the module's generator, reseeded in forked children) */
static PyObject *randbits(PyObject *bits) {
    PyObject *f = PyObject_GetAttr(sp_random, n_getrandbits);
    if (f == NULL) return NULL;
    PyObject *r = PyObject_CallOneArg(f, bits);
    Py_DECREF(f);
    return r;
}

static PyObject *now_ns(void) { return PyObject_CallMethodNoArgs(sp_time, n_time_ns); }

/* the processor module's ``_pid[0]`` (this process's id, kept current over fork), a new reference */
static PyObject *current_pid(void) {
    PyObject *l = PyObject_GetAttr(sp_proc_mod, n_ppid);
    if (l == NULL) return NULL;
    PyObject *pid = PyList_Check(l) && PyList_GET_SIZE(l) > 0 ? Py_NewRef(PyList_GET_ITEM(l, 0)) : NULL;
    Py_DECREF(l);
    if (pid == NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "processor._pid is not a list");
    return pid;
}

/* the store module's integer ``name`` (read at each call: tests change _DRAIN_AT), or -1 with an exception */
static long long store_int(PyObject *name) {
    PyObject *v = PyObject_GetAttr(sp_store_mod, name);
    if (v == NULL) return -1;
    long long x;
    int r = int_arg(v, "a store constant", 0, LLONG_MAX, &x);
    Py_DECREF(v);
    return r < 0 ? -1 : x;
}

/* whether the store module's C builder ``name`` is on (tests turn them off to run the Python reference) */
static int store_native(PyObject *name) {
    PyObject *v = PyObject_GetAttr(sp_store_mod, name);
    if (v == NULL) return -1;
    int on = v != Py_None;
    Py_DECREF(v);
    return on;
}

/* processor._failed(span, e) for the exception being raised (cleared); -1 if that raised too */
static int span_failed(PyObject *processor, PyObject *span) {
    PyObject *exc = PyErr_GetRaisedException_compat();
    if (exc != NULL && !PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_Exception)) {
        PyErr_SetRaisedException_compat(exc); /* KeyboardInterrupt and the like go on up, as in the Python code */
        return -1;
    }
    PyObject *r = PyObject_CallMethodObjArgs(processor, n_failed, span, exc != NULL ? exc : Py_None, NULL);
    Py_XDECREF(exc);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* processor._local.error = None */
static int clear_error(PyObject *processor) {
    PyObject *local = PyObject_GetAttr(processor, n_local);
    if (local == NULL) return -1;
    int r = PyObject_SetAttr(local, n_error, Py_None);
    Py_DECREF(local);
    return r;
}

/* start_span(processor, name, start_ns, attrs, head) -> AuditOnlySpan or None */
static PyObject *start_span(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "start_span() takes 5 arguments");
        return NULL;
    }
    if (so_base < 0 || off_written < 0) Py_RETURN_NONE;
    PyObject *processor = args[0], *head = args[4];
    if (!PyBytes_CheckExact(head) || !PyLong_CheckExact(args[2])) Py_RETURN_NONE;
    /* the current span, as __init__ finds it: only its absence is this path's */
    PyObject *ctx = PyObject_CallNoArgs(sp_ctx_get);
    if (ctx == NULL) return NULL;
    if (!PyDict_Check(ctx)) {
        Py_DECREF(ctx);
        Py_RETURN_NONE;
    }
    PyObject *current = PyDict_GetItemWithError(ctx, sp_span_key);
    Py_DECREF(ctx);
    if (current != NULL) Py_RETURN_NONE;
    if (PyErr_Occurred()) return NULL;
    PyObject *trace_id = randbits(int_128);
    if (trace_id == NULL) return NULL;
    PyObject *span_id = randbits(int_64);
    if (span_id == NULL) {
        Py_DECREF(trace_id);
        return NULL;
    }
    PyObject *start = PyObject_IsTrue(args[2]) ? Py_NewRef(args[2]) : now_ns();
    PyObject *late = PyDict_New();
    PyObject *span = (start != NULL && late != NULL) ? new_record(sp_type) : NULL;
    if (span == NULL) {
        Py_DECREF(trace_id);
        Py_DECREF(span_id);
        Py_XDECREF(start);
        Py_XDECREF(late);
        return NULL;
    }
    slot_put(span, so_trace_id, trace_id);
    slot_put(span, so_parent, Py_NewRef(Py_None));
    slot_put(span, so_span_id, span_id);
    slot_put(span, so_ctx, Py_NewRef(Py_None));
    slot_put(span, so_name, Py_NewRef(args[1]));
    slot_put(span, so_kind, Py_NewRef(sp_kind));
    slot_put(span, so_start_time, start);
    slot_put(span, so_end_time, Py_NewRef(Py_None));
    slot_put(span, so_base, Py_NewRef(args[3]));
    slot_put(span, so_status, Py_NewRef(Py_None));
    slot_put(span, so_processor, Py_NewRef(processor));
    slot_put(span, so_ended, Py_NewRef(Py_False));
    slot_put(span, so_late, late);
    slot_put(span, so_head, Py_NewRef(head));
    slot_put(span, so_intent, Py_NewRef(Py_None));
    slot_put(span, so_outcome, Py_NewRef(Py_None));
    /* processor.start_prepared(span): its intent, now, before the driver sees the statement */
    PyObject *pid = current_pid(), *rec = NULL;
    PyObject *store = pid != NULL ? PyObject_GetAttr(processor, n_store) : NULL;
    if (store == NULL) goto failed;
    PyObject *iargs[6] = {head, Py_None, pid, span_id, start, trace_id};
    int native = store_native(n_native_intent);
    long long drain_at = native > 0 ? store_int(n_drain_at) : 0;
    if (native < 0 || drain_at < 0) goto failed;
    PyObject *sd = PyObject_GenericGetDict(store, NULL);
    if (sd == NULL) goto failed;
    PyObject *j = item(sd, n_journal), *failing = item(sd, n_failing);
    if (PyErr_Occurred()) {
        Py_DECREF(sd);
        goto failed;
    }
    Py_XINCREF(j);
    Py_DECREF(sd);
    if (native && j != NULL && j != Py_None && failing == Py_False) {
        PyObject *jpid = PyObject_GetAttr(j, n_pid);
        int same = jpid != NULL ? PyObject_RichCompareBool(jpid, pid, Py_EQ) : -1;
        Py_XDECREF(jpid);
        if (same < 0) {
            Py_DECREF(j);
            goto failed;
        }
        if (same) {
            rec = intent_into(store, j, iargs, drain_at);
            if (rec == NULL) {
                Py_DECREF(j);
                goto failed;
            }
            if (rec == Py_None) Py_CLEAR(rec);
        }
    }
    Py_XDECREF(j);
    if (rec == NULL) { /* the Python path: AuditStore.intent, which checks again and journals or writes it */
        PyObject *method = PyObject_GetAttrString(store, "intent");
        rec = method != NULL ? PyObject_Vectorcall(method, iargs, 6, NULL) : NULL;
        Py_XDECREF(method);
        if (rec == NULL) goto failed;
    }
    slot_put(span, so_intent, rec);
    if (clear_error(processor) < 0) goto error;
    Py_DECREF(store);
    Py_DECREF(pid);
    return span;
failed: /* never raise into the pipeline: it refuses on last_error (start_prepared) */
    if (span_failed(processor, span) < 0) goto error;
    Py_XDECREF(store);
    Py_XDECREF(pid);
    return span;
error:
    Py_XDECREF(store);
    Py_XDECREF(pid);
    Py_DECREF(span);
    return NULL;
}

/* 1 while SpanMetrics.waiting() would answer True without looking again (no MeterProvider yet, the next look not
 * due: its own fast path, read here), 0 when observe() must run, -1 on an error (cleared: observe() decides) */
static int metrics_waiting(PyObject *m) {
    PyObject *w = PyObject_GetAttr(m, n_mwaiting);
    if (w == NULL) {
        PyErr_Clear();
        return 0;
    }
    int waiting = w == Py_True;
    Py_DECREF(w);
    if (!waiting) return 0;
    PyObject *due = PyObject_GetAttr(m, n_next_check);
    if (due == NULL || !PyFloat_CheckExact(due)) {
        Py_XDECREF(due);
        PyErr_Clear();
        return 0;
    }
    double next = PyFloat_AS_DOUBLE(due);
    Py_DECREF(due);
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9 < next ? 1 : 0;
}

/* fold_span(span, rows, masked_cells, masked_columns) -> True, False or None: fold() of a result's counts into the
 * outcome of an audit-only span (its processor's store); None when the span is not one, or has no outcome waiting */
static PyObject *fold_span(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "fold_span() takes 4 arguments");
        return NULL;
    }
    PyObject *span = args[0];
    if (so_base < 0 || (PyObject *)Py_TYPE(span) != sp_type) Py_RETURN_NONE;
    PyObject *out = *slot(span, so_outcome), *processor = *slot(span, so_processor);
    if (out == NULL || processor == NULL || (PyObject *)Py_TYPE(out) != outcome_type) Py_RETURN_NONE;
    PyObject *store = PyObject_GetAttr(processor, n_store);
    if (store == NULL) return NULL;
    Py_INCREF(out);
    PyObject *fargs[5] = {store, out, args[1], args[2], args[3]};
    PyObject *r = fold(NULL, fargs, 5);
    Py_DECREF(out);
    Py_DECREF(store);
    return r;
}


/* -- a result read whole: ResultState.many + finish on their usual path --------------------------------------------
 *
 * ``fetchall()`` of an unmasked, uncapped result in the default configuration: the rows counted and, for an
 * audit-only statement span, the count folded into the statement's deferred outcome (what ResultState.many(...,
 * complete=True), finish() and Recorder.result_consumed do there: ~140 Python opcodes a statement). */
static PyObject *rs_type, *rs_tracer_type; /* ResultState, AuditOnlyTracer */
static Py_ssize_t rs_active = -1, rs_gov, rs_limit, rs_masked_cells, rs_plan, rs_poisoned, rs_rows, rs_span;
static PyObject *n_limiter, *n_recorder, *n_results;

/* rows_config(ResultState, AuditOnlyTracer) -> bool */
static PyObject *rows_config(PyObject *self, PyObject *args) {
    PyObject *cls, *tracer;
    if (!PyArg_ParseTuple(args, "OO", &cls, &tracer)) return NULL;
    rs_active = -1;
    if (!PyType_Check(cls) || !PyType_Check(tracer)) Py_RETURN_FALSE;
    const char *names[8] = {"active", "gov", "limit", "masked_cells", "plan", "poisoned", "rows", "span"};
    Py_ssize_t offs[8];
    for (int k = 0; k < 8; k++)
        if ((offs[k] = slot_offset(cls, names[k])) < 0) Py_RETURN_FALSE;
    Py_XSETREF(rs_type, Py_NewRef(cls));
    Py_XSETREF(rs_tracer_type, Py_NewRef(tracer));
    rs_gov = offs[1], rs_limit = offs[2], rs_masked_cells = offs[3], rs_plan = offs[4], rs_poisoned = offs[5];
    rs_rows = offs[6], rs_span = offs[7];
    rs_active = offs[0];
    Py_RETURN_TRUE;
}

/* rows_all(state, rows) -> True when done (rows go out as they are), False when not this path's, with nothing
 * changed: the caller runs ResultState.many(rows, complete=True). */
static PyObject *rows_all(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "rows_all() takes 2 arguments");
        return NULL;
    }
    PyObject *st = args[0], *rows = args[1];
    if (rs_active < 0 || (PyObject *)Py_TYPE(st) != rs_type || !PyList_CheckExact(rows)) Py_RETURN_FALSE;
    PyObject *active = *slot(st, rs_active), *gov = *slot(st, rs_gov), *count = *slot(st, rs_rows),
             *span = *slot(st, rs_span);
    if (active != Py_True || gov == NULL || count == NULL || span == NULL || !PyLong_CheckExact(count) ||
        *slot(st, rs_poisoned) != Py_None || *slot(st, rs_limit) != Py_None || *slot(st, rs_plan) != Py_None)
        Py_RETURN_FALSE;
    /* an SDK provider's span (not an audit-only one): the Python code records its count */
    if (span != Py_None && (so_base < 0 || (PyObject *)Py_TYPE(span) != sp_type)) Py_RETURN_FALSE;
    PyObject *limiter = PyObject_GetAttr(gov, n_limiter);
    if (limiter == NULL) return NULL;
    int unlimited = limiter == Py_None;
    Py_DECREF(limiter);
    if (!unlimited) Py_RETURN_FALSE; /* finish() tells the rate limiter: the Python code */
    PyObject *n = PyLong_FromSsize_t(PyList_GET_SIZE(rows));
    PyObject *total = n != NULL ? PyNumber_Add(count, n) : NULL;
    Py_XDECREF(n);
    if (total == NULL) return NULL;
    if (span == Py_None) { /* nothing to record: only counted */
        slot_put(st, rs_rows, total);
        Py_RETURN_TRUE;
    }
    /* recorded: only into an audit-only span's outcome (Recorder.result_consumed's first branch) */
    PyObject *recorder = PyObject_GetAttr(gov, n_recorder);
    PyObject *results = recorder != NULL ? PyObject_GetAttr(recorder, n_results) : NULL;
    Py_XDECREF(recorder);
    if (results == NULL) {
        Py_DECREF(total);
        return NULL;
    }
    int audit_only = (PyObject *)Py_TYPE(results) == rs_tracer_type;
    Py_DECREF(results);
    if (!audit_only) {
        Py_DECREF(total);
        Py_RETURN_FALSE;
    }
    PyObject *zero = PyLong_FromLong(0), *none_masked = PyTuple_New(0);
    PyObject *fargs[4] = {span, total, zero, none_masked};
    PyObject *folded = zero != NULL && none_masked != NULL ? fold_span(NULL, fargs, 4) : NULL;
    Py_XDECREF(none_masked);
    if (folded == NULL) {
        Py_XDECREF(zero);
        Py_DECREF(total);
        return NULL;
    }
    int done = folded == Py_True;
    Py_DECREF(folded);
    if (!done) { /* not folded (the outcome was written, or not this path's): the Python code records it */
        Py_DECREF(zero);
        Py_DECREF(total);
        Py_RETURN_FALSE;
    }
    slot_put(st, rs_rows, total);
    slot_put(st, rs_masked_cells, zero);
    Py_INCREF(span); /* kept alive until the slot let go of it */
    slot_put(st, rs_span, Py_NewRef(Py_None));
    Py_DECREF(span);
    Py_RETURN_TRUE;
}

/* pg_fields(pgresult, n) -> (fname(0), ftype(0), fmod(0), fname(1), ...): what psycopg makes the columns of a
   description from, read in one call (PsycopgDriver.description's key, decision 0427; the Python reference builds
   the same values in a comprehension, ~10k instructions a statement for three columns) */
static PyObject *pg_fields(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static PyObject *names[3] = {NULL, NULL, NULL};
    static const char *const spelled[3] = {"fname", "ftype", "fmod"};
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pg_fields() takes 2 arguments");
        return NULL;
    }
    for (int k = 0; k < 3; k++) {
        if (names[k] == NULL && (names[k] = PyUnicode_InternFromString(spelled[k])) == NULL) return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(args[1]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 0 || n > 100000) {
        PyErr_SetString(PyExc_ValueError, "pg_fields(): field count out of range");
        return NULL;
    }
    PyObject *out = PyTuple_New(3 * n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        for (int k = 0; k < 3; k++) {
            PyObject *call[2] = {args[0], index};
            PyObject *value = PyObject_VectorcallMethod(names[k], call, 2, NULL);
            if (value == NULL) {
                Py_DECREF(index);
                Py_DECREF(out);
                return NULL;
            }
            PyTuple_SET_ITEM(out, 3 * i + k, value);
        }
        Py_DECREF(index);
    }
    return out;
}

/* end_span(span, end_time) -> True, or None when it is not this path's (the caller runs AuditOnlySpan.end) */
static PyObject *end_span(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "end_span() takes 2 arguments");
        return NULL;
    }
    PyObject *span = args[0];
    if (so_base < 0 || off_written < 0 || (PyObject *)Py_TYPE(span) != sp_type) Py_RETURN_NONE;
    PyObject *ended = *slot(span, so_ended), *intent = *slot(span, so_intent), *status = *slot(span, so_status),
             *processor = *slot(span, so_processor), *late = *slot(span, so_late), *span_id = *slot(span, so_span_id);
    if (ended != Py_False || intent == NULL || intent == Py_None || status != Py_None || processor == NULL ||
        late == NULL || span_id == NULL || !PyDict_CheckExact(late))
        Py_RETURN_NONE;
    PyObject *end = args[1] != Py_None && PyObject_IsTrue(args[1]) ? Py_NewRef(args[1]) : now_ns();
    if (end == NULL) return NULL;
    slot_put(span, so_ended, Py_NewRef(Py_True));
    slot_put(span, so_end_time, end);
    Py_INCREF(processor);
    /* processor.end_prepared(span), a success: AuditStore.defer_outcome */
    PyObject *out = NULL, *max = NULL;
    PyObject *pid = current_pid();
    PyObject *store = pid != NULL ? PyObject_GetAttr(processor, n_store) : NULL;
    if (store == NULL) goto failed;
    int native = store_native(n_native_outcome);
    if (native < 0 || (native && (max = PyObject_GetAttr(sp_store_mod, n_max_deferred)) == NULL)) goto failed;
    PyObject *oargs[7] = {store, late, end, intent, span_id, pid, max};
    out = native ? defer_outcome(NULL, oargs, 7) : Py_NewRef(Py_None);
    Py_XDECREF(max);
    if (out == Py_None) { /* declined: the Python method */
        Py_CLEAR(out);
        PyObject *method = PyObject_GetAttrString(store, "defer_outcome");
        out = method != NULL ? PyObject_Vectorcall(method, oargs + 1, 4, NULL) : NULL;
        Py_XDECREF(method);
    }
    if (out == NULL) goto failed;
    slot_put(span, so_outcome, out);
    if (clear_error(processor) < 0) goto error;
    goto metrics;
failed:
    if (span_failed(processor, span) < 0) goto error;
metrics:;
    PyObject *m = PyObject_GetAttr(processor, n_metrics);
    if (m == NULL) goto error;
    if (m != Py_None && metrics_waiting(m) == 0) { /* processor._observe_metrics(span): logs, never raises */
        PyObject *r = PyObject_CallMethodOneArg(processor, n_observe_metrics, span);
        if (r == NULL) {
            Py_DECREF(m);
            goto error;
        }
        Py_DECREF(r);
    }
    Py_DECREF(m);
    Py_XDECREF(store);
    Py_XDECREF(pid);
    Py_DECREF(processor);
    Py_RETURN_TRUE;
error:
    Py_XDECREF(store);
    Py_XDECREF(pid);
    Py_DECREF(processor);
    return NULL;
}

/* bind(PreparedIntent, PreparedOutcome): the record classes chain() takes the fast way */
static PyObject *bind(PyObject *self, PyObject *args) {
    PyObject *it, *ot;
    if (!PyArg_ParseTuple(args, "OO", &it, &ot)) return NULL;
    Py_XSETREF(intent_type, Py_NewRef(it));
    Py_XSETREF(outcome_type, Py_NewRef(ot));
    /* the slots journal_intent() and defer_outcome() fill; any missing or of another kind: they always decline */
    off_written = -1;
    if (!PyType_Check(it) || !PyType_Check(ot)) Py_RETURN_NONE;
    Py_ssize_t offs[11];
    const char *names[11] = {"written", "seq", "frame", "cached", "pieces", "attrs", "end", "intent", "span_id",
                             "status", "status_message"};
    for (int k = 0; k < 11; k++) {
        offs[k] = slot_offset(k < 5 ? it : ot, names[k]);
        if (offs[k] < 0) Py_RETURN_NONE;
    }
    /* the base slots at the same offsets in both classes */
    for (int k = 0; k < 4; k++)
        if (slot_offset(ot, names[k]) != offs[k]) Py_RETURN_NONE;
    off_seq = offs[1], off_frame = offs[2], off_cached = offs[3], off_pieces = offs[4], off_attrs = offs[5];
    off_end = offs[6], off_intent = offs[7], off_span_id = offs[8], off_status = offs[9];
    off_status_message = offs[10];
    off_written = offs[0];
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL, "Copy one journal frame into the mapping."},
    {"copy_frame", (PyCFunction)(void (*)(void))copy_frame, METH_FASTCALL, "Copy a built frame into the mapping."},
    {"chain", (PyCFunction)(void (*)(void))chain, METH_FASTCALL, "Chain a run of prepared records."},
    {"native_sha256", native_sha256_py, METH_O, "SHA-256 as chain() computes it without the GIL (None: not available)."},
    {"journal_intent", (PyCFunction)(void (*)(void))journal_intent, METH_FASTCALL,
     "Build a statement's intent and append it to the journal (AuditStore.intent's usual path)."},
    {"defer_outcome", (PyCFunction)(void (*)(void))defer_outcome, METH_FASTCALL,
     "Build a statement's outcome and defer it (AuditStore.defer_outcome's usual path)."},
    {"templates", templates, METH_VARARGS, "Hand over orjson.dumps, its option and the fold's attribute names."},
    {"outcome_pieces", outcome_pieces_py, METH_O, "PreparedOutcome.pieces() on its usual shape, or None."},
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "Fold a result's row counts into its deferred outcome (AuditStore.amend's usual path)."},
    {"span_config", span_config, METH_VARARGS, "Hand over what start_span() and end_span() need."},
    {"start_span", (PyCFunction)(void (*)(void))start_span, METH_FASTCALL,
     "Start a statement's audit-only span with its intent journaled (AuditOnlySpan's usual path)."},
    {"fold_span", (PyCFunction)(void (*)(void))fold_span, METH_FASTCALL,
     "Fold a result's row counts into an audit-only span's deferred outcome."},
    {"rows_config", rows_config, METH_VARARGS, "Hand rows_all() the classes it reads (ResultState, AuditOnlyTracer)."},
    {"rows_all", (PyCFunction)(void (*)(void))rows_all, METH_FASTCALL,
     "A result read whole, unmasked and uncapped: counted, and folded into an audit-only span's outcome."},
    {"end_span", (PyCFunction)(void (*)(void))end_span, METH_FASTCALL,
     "End a statement's audit-only span with its outcome deferred (AuditOnlySpan.end's usual path)."},
    {"pg_fields", (PyCFunction)(void (*)(void))pg_fields, METH_FASTCALL,
     "Each field's name, type and modifier of a psycopg result (PsycopgDriver.description's key)."},
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
    load_native_sha256(); /* after hashlib: its _hashlib loaded libcrypto */
    load_native_crc32();  /* after zlib: it loaded libz */
    str_digest = PyUnicode_InternFromString("digest");
    str_key = PyUnicode_InternFromString("key");
    str_digest_size = PyUnicode_InternFromString("digest_size");
    str_pieces = PyUnicode_InternFromString("pieces");
    str_parts = PyUnicode_InternFromString("parts");
    str_seq = PyUnicode_InternFromString("seq");
    str_written = PyUnicode_InternFromString("written");
    str_type = PyUnicode_InternFromString("type");
    int_16 = PyLong_FromLong(16);
#define NAME(v, text) if ((v = PyUnicode_InternFromString(text)) == NULL) return NULL
    NAME(n_pid, "pid"); NAME(n_closed, "closed"); NAME(n_store_id, "store_id"); NAME(n_lock, "lock");
    NAME(n_deferred, "deferred"); NAME(n_frames, "frames"); NAME(n_wpos, "wpos"); NAME(n_mm, "mm");
    NAME(n_fd, "fd"); NAME(n_size, "size"); NAME(n_epoch, "epoch"); NAME(n_jkey, "jkey"); NAME(n_queue, "queue");
    NAME(n_failing, "_failing"); NAME(n_sseq, "_seq"); NAME(n_sstore_id, "_store_id"); NAME(n_acquire, "acquire");
    NAME(n_release, "release"); NAME(n_flush, "flush"); NAME(n_frame, "frame"); NAME(n_sfd, "_fd");
    NAME(n_flusher, "_flusher"); NAME(n_spid, "_pid"); NAME(n_journal, "_journal"); NAME(n_wake, "_wake");
    NAME(n_set, "set"); NAME(n_defer, "defer"); NAME(n_unset, "UNSET"); NAME(n_append, "append");
    NAME(n_intent, "intent"); NAME(n_slock, "_lock");
    NAME(n_getrandbits, "getrandbits"); NAME(n_time_ns, "time_ns"); NAME(n_store, "store"); NAME(n_local, "_local");
    NAME(n_error, "error"); NAME(n_failed, "_failed"); NAME(n_metrics, "metrics");
    NAME(n_observe_metrics, "_observe_metrics"); NAME(n_ppid, "_pid"); NAME(n_drain_at, "_DRAIN_AT");
    NAME(n_max_deferred, "_MAX_DEFERRED"); NAME(n_native_intent, "_native_intent");
    NAME(n_native_outcome, "_native_outcome"); NAME(n_mwaiting, "_waiting"); NAME(n_next_check, "_next_check");
    NAME(n_limiter, "limiter"); NAME(n_recorder, "recorder"); NAME(n_results, "results");
    if ((int_64 = PyLong_FromLong(64)) == NULL || (int_128 = PyLong_FromLong(128)) == NULL) return NULL;
#undef NAME
    if (!str_digest || !str_key || !str_digest_size || !str_pieces || !str_parts || !str_seq || !str_written ||
        !str_type || !int_16)
        return NULL;
    return PyModule_Create(&module);
}
