/*
 * examplegen._framing: the SHA-256 digest and the CRC32C of every value of an Arrow binary
 * array, in one call.
 *
 * The hash split (TFX's rule: SHA-256 of the serialized Example) and the TFRecord framing
 * (CRC32C of the record) need both values for each record. From Python that is two calls
 * per record plus a bytes object per record, ~1.3 us of a Parquet row's ~3.5 us, most of
 * it call overhead (OpenSSL 3 sets up a digest context per hashlib object). This loop reads
 * the array's offsets and data buffers in place and calls OpenSSL's SHA-256 (SHA256_Init/Update/Final).
 *
 * Only glue is written here: SHA-256 is OpenSSL's, the one Python's hashlib uses; CRC32C
 * is the SSE4.2 instruction where the CPU has it, else the usual table. examplegen.tfrecord
 * uses this module when it is built and falls back to hashlib and google_crc32c otherwise;
 * tests/test_framing_accelerator.py checks that both give the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init/Update/Final: in OpenSSL 3 the one-shot
                                       SHA256() and EVP look the algorithm up on every call */
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define HAVE_SSE42_PATH 1
#endif

static uint32_t crc_table[256];

static void crc_table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c_table(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--) c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

#ifdef HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(const uint8_t *p, size_t n) {
    uint64_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = _mm_crc32_u8(c32, *p++);
    return c32 ^ 0xFFFFFFFFu;
}
#endif

static uint32_t (*crc32c)(const uint8_t *, size_t) = crc32c_table;

/* digests_and_crcs(offsets, data, offset_width, start, count, with_digests) -> (digests, crcs)
 * offsets: the array's offsets buffer (int32 or int64 values, offset_width 4 or 8 bytes);
 * data: its data buffer; values start..start+count-1 (an array's own offset and length).
 * digests: 32 bytes per value, back to back (empty unless with_digests); crcs: 4 bytes per
 * value, native uint32. */
static PyObject *digests_and_crcs(PyObject *self, PyObject *args) {
    Py_buffer offsets, data;
    int width, with_digests;
    Py_ssize_t start, count;
    if (!PyArg_ParseTuple(args, "y*y*innp", &offsets, &data, &width, &start, &count, &with_digests))
        return NULL;
    PyObject *digests = NULL, *crcs = NULL, *result = NULL;
    if ((width != 4 && width != 8) || start < 0 || count < 0 ||
        (start + count + 1) * (Py_ssize_t)width > offsets.len) {
        PyErr_SetString(PyExc_ValueError, "offsets buffer too short for start and count");
        goto done;
    }
    digests = PyBytes_FromStringAndSize(NULL, with_digests ? count * 32 : 0);
    crcs = PyBytes_FromStringAndSize(NULL, count * 4);
    if (!digests || !crcs) goto done;
    unsigned char *out_digest = (unsigned char *)PyBytes_AS_STRING(digests);
    uint32_t *out_crc = (uint32_t *)PyBytes_AS_STRING(crcs);
    const uint8_t *base = (const uint8_t *)data.buf;
    const char *offs = (const char *)offsets.buf;
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t a, b;
        if (width == 4) {
            int32_t x, y;
            memcpy(&x, offs + (start + i) * 4, 4);
            memcpy(&y, offs + (start + i + 1) * 4, 4);
            a = x;
            b = y;
        } else {
            memcpy(&a, offs + (start + i) * 8, 8);
            memcpy(&b, offs + (start + i + 1) * 8, 8);
        }
        if (a < 0 || b < a || b > data.len) {
            bad = 1;
            break;
        }
        if (with_digests) {
            SHA256_CTX sha;
            SHA256_Init(&sha);
            SHA256_Update(&sha, base + a, (size_t)(b - a));
            SHA256_Final(out_digest + 32 * i, &sha);
        }
        out_crc[i] = crc32c(base + a, (size_t)(b - a));
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        PyErr_SetString(PyExc_ValueError, "offsets point outside the data buffer");
        goto done;
    }
    result = PyTuple_Pack(2, digests, crcs);
done:
    Py_XDECREF(digests);
    Py_XDECREF(crcs);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *crc32c_of(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    uint32_t c = crc32c((const uint8_t *)data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(c);
}

static PyObject *crc32c_table_of(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data)) return NULL;
    uint32_t c = crc32c_table((const uint8_t *)data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef methods[] = {
    {"digests_and_crcs", digests_and_crcs, METH_VARARGS,
     "digests_and_crcs(offsets, data, offset_width, start, count, with_digests) -> (sha256 digests, crc32c values)"},
    {"crc32c", crc32c_of, METH_VARARGS, "crc32c(data) -> the CRC32C (Castagnoli) of data"},
    {"crc32c_table", crc32c_table_of, METH_VARARGS,
     "crc32c_table(data) -> crc32c(data) by the table, the path of CPUs without SSE4.2"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_framing", NULL, -1, methods};

PyMODINIT_FUNC PyInit__framing(void) {
    crc_table_init();
#ifdef HAVE_SSE42_PATH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) crc32c = crc32c_sse42;
#endif
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "CRC32C_IMPLEMENTATION",
                                        crc32c == crc32c_table ? "table" : "sse4.2") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
