/* The gateway's prompt-prefix names in one C call per request (tide/gateway/prefix.py, `prompt_chunks`).

   Exactly what prefix.py's Python naming computes: the prompt's chunks (ends at the BOUNDARIES that
   `configure` is given), the first ones up to `whole` bytes hashed whole, each later one by its last
   `window` bytes, each with XXH64 under one seed, and the name of chunk k the sum of the hashes of chunks
   1..k (modulo 2**64: the Python fallback's names, which `itertools.accumulate` sums unbounded, modulo
   2**64; a process uses one or the other). In Python that is a dozen C calls
   with their argument parsing and an object per part, about 16k instructions for an 8 KB prompt, of which
   hashing is 2k; here about the hashing alone. prefix.py uses the Python code when this module is not
   built (`pip install` compiles it where a C compiler is; tests/gateway/test_prefix_native.py checks the
   two agree).

   XXH64 is written out below (the algorithm of xxHash's spec, doc/xxhash_spec.md, about 50 lines)
   rather than vendoring the 280 KB xxhash.h for it; the test checks it against the `xxhash` package on
   every length from 0 to 2,100 bytes and several seeds. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_ENDS 64

static Py_ssize_t chunk_ends[MAX_ENDS];
static int chunk_count = 0; /* 0 until configure() */
static Py_ssize_t whole_bytes = 0;
static Py_ssize_t window_bytes = 0;
static uint64_t name_seed = 0;

static const uint64_t P1 = 0x9E3779B185EBCA87ULL;
static const uint64_t P2 = 0xC2B2AE3D27D4EB4FULL;
static const uint64_t P3 = 0x165667B19E3779F9ULL;
static const uint64_t P4 = 0x85EBCA77C2B2AE63ULL;
static const uint64_t P5 = 0x27D4EB2F165667C5ULL;

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* `width` bytes at p as a little-endian integer: XXH64 reads its input little-endian on every machine. With
   `width` a constant, compilers make this one load (and a byte swap on big-endian machines). */
static inline uint64_t read_le(const unsigned char *p, int width) {
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t xxh64_round(uint64_t acc, uint64_t input) {
    acc += input * P2;
    acc = rotl64(acc, 31);
    return acc * P1;
}

static inline uint64_t xxh64_merge(uint64_t acc, uint64_t val) {
    acc ^= xxh64_round(0, val);
    return acc * P1 + P4;
}

static uint64_t xxh64(const unsigned char *p, Py_ssize_t len, uint64_t seed) {
    const unsigned char *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
        const unsigned char *limit = end - 32;
        do {
            v1 = xxh64_round(v1, read_le(p, 8));
            v2 = xxh64_round(v2, read_le(p + 8, 8));
            v3 = xxh64_round(v3, read_le(p + 16, 8));
            v4 = xxh64_round(v4, read_le(p + 24, 8));
            p += 32;
        } while (p <= limit);
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xxh64_merge(h, v1);
        h = xxh64_merge(h, v2);
        h = xxh64_merge(h, v3);
        h = xxh64_merge(h, v4);
    } else {
        h = seed + P5;
    }
    h += (uint64_t)len;
    while (p + 8 <= end) {
        h ^= xxh64_round(0, read_le(p, 8));
        h = rotl64(h, 27) * P1 + P4;
        p += 8;
    }
    if (p + 4 <= end) {
        h ^= read_le(p, 4) * P1;
        h = rotl64(h, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        h ^= (*p) * P5;
        h = rotl64(h, 11) * P1;
        p++;
    }
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

/* configure(boundaries: tuple[int, ...], whole: int, window: int, seed: int) -> None */
static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *ends;
    Py_ssize_t whole, window;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "O!nnK", &PyTuple_Type, &ends, &whole, &window, &seed)) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(ends);
    if (count < 1 || count > MAX_ENDS || window < 1 || whole < 1) {
        PyErr_SetString(PyExc_ValueError, "prefix names: 1-64 chunk ends, and a positive window and whole size");
        return NULL;
    }
    Py_ssize_t previous = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t end = PyLong_AsSsize_t(PyTuple_GET_ITEM(ends, i));
        if (end == -1 && PyErr_Occurred()) {
            return NULL;
        }
        /* ends rise, and a chunk past `whole` is at least a window long */
        if (end <= previous || (end > whole && end - window < previous)) {
            PyErr_SetString(PyExc_ValueError, "prefix names: chunk ends must rise, by at least a window past the whole size");
            return NULL;
        }
        chunk_ends[i] = end;
        previous = end;
    }
    chunk_count = (int)count;
    whole_bytes = whole;
    window_bytes = window;
    name_seed = (uint64_t)seed;
    Py_RETURN_NONE;
}

/* chained_names(data: bytes, start: int, max_chunks: int) -> tuple[int, ...]: the names of the whole
   chunks of data[start:], at most max_chunks of them. */
static PyObject *chained_names(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "chained_names(data, start, max_chunks)");
        return NULL;
    }
    if (chunk_count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "prefix names: configure() was not called");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t max_chunks = PyLong_AsSsize_t(args[2]);
    if (max_chunks == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    const unsigned char *data;
    Py_ssize_t size;
    int have_view = 0;
    if (PyBytes_CheckExact(args[0])) { /* the gateway's case: no buffer protocol */
        data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
        size = PyBytes_GET_SIZE(args[0]);
    } else {
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
            return NULL;
        }
        have_view = 1;
        data = (const unsigned char *)view.buf;
        size = view.len;
    }
    if (start < 0 || start > size) {
        start = size; /* nothing to name */
    }
    Py_ssize_t length = size - start;
    Py_ssize_t count = 0;
    while (count < chunk_count && chunk_ends[count] <= length) {
        count++;
    }
    if (count > max_chunks) {
        count = max_chunks < 0 ? 0 : max_chunks;
    }
    PyObject *names = PyTuple_New(count);
    if (names == NULL) {
        goto done;
    }
    const unsigned char *base = data + start;
    /* The running sum wraps at 2**64 (Python's fallback sums unbounded ints: the same names modulo 2**64,
       which is what the test compares); an int under 2**64 is one allocation, a larger one much more work. */
    uint64_t sum = 0;
    Py_ssize_t previous = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t end = chunk_ends[i];
        Py_ssize_t from = end <= whole_bytes ? previous : end - window_bytes;
        sum += xxh64(base + from, end - from, name_seed);
        previous = end;
        PyObject *name = PyLong_FromUnsignedLongLong((unsigned long long)sum);
        if (name == NULL) {
            Py_CLEAR(names);
            goto done;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
done:
    if (have_view) {
        PyBuffer_Release(&view);
    }
    return names;
}

/* xxh64(data: bytes, seed: int) -> int: the hash itself, for the test against the xxhash package. */
static PyObject *xxh64_py(PyObject *self, PyObject *args) {
    Py_buffer view;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "y*K", &view, &seed)) {
        return NULL;
    }
    uint64_t h = xxh64((const unsigned char *)view.buf, view.len, (uint64_t)seed);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong((unsigned long long)h);
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "Set the chunk ends, whole size, window and seed (prefix.py does)."},
    {"chained_names", (PyCFunction)(void (*)(void))chained_names, METH_FASTCALL,
     "The chained names of the whole chunks of data[start:], at most max_chunks."},
    {"xxh64", xxh64_py, METH_VARARGS, "XXH64 of data under seed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_prefixnames", "The gateway's prompt-prefix names, in C (see prefix.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__prefixnames(void) { return PyModule_Create(&module); }
