/*
 * examplegen._framing: the SHA-256 digest and the CRC32C of every value of an Arrow binary
 * array, in one call; the per-row join of binary arrays that assembles Examples; the
 * leading bytes of each row of a matrix (features whose rows differ in length); and the
 * TFRecord frames of a batch written straight in split order.
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

/* join_rows(pieces, n, out_offsets, out_data, out_width)
 * Row i of the result is row i of every piece, back to back: Arrow's
 * binary_join_element_wise with an empty separator, for pieces without nulls. Each piece is
 * (offsets, data, offset_width, start) as in digests_and_crcs. out_offsets (n + 1 values
 * of out_width bytes) and out_data (exactly the joined size) are writable buffers the
 * caller allocated from Arrow's pool. Arrow's kernel spends ~50 ns per piece and row on
 * generic checks; an Example of the taxi data is 15 pieces. */
typedef struct {
    Py_buffer offsets, data;
    int width;
    Py_ssize_t start;
} Piece;

static int64_t piece_offset(const Piece *p, Py_ssize_t row) {
    const char *at = (const char *)p->offsets.buf + (p->start + row) * p->width;
    if (p->width == 4) {
        int32_t x;
        memcpy(&x, at, 4);
        return x;
    }
    int64_t x;
    memcpy(&x, at, 8);
    return x;
}

static PyObject *join_rows(PyObject *self, PyObject *args) {
    PyObject *list;
    Py_ssize_t n;
    Py_buffer out_offsets, out_data;
    int out_width;
    if (!PyArg_ParseTuple(args, "O!nw*w*i", &PyList_Type, &list, &n, &out_offsets, &out_data, &out_width))
        return NULL;
    Py_ssize_t k = PyList_GET_SIZE(list), ready = 0;
    Piece *pieces = PyMem_Calloc(k ? k : 1, sizeof(Piece));
    const char *error = NULL;
    if (!pieces) {
        PyErr_NoMemory();
        goto done;
    }
    if ((out_width != 4 && out_width != 8) || n < 0 || out_offsets.len < (n + 1) * (Py_ssize_t)out_width) {
        error = "output offsets buffer too short";
        goto done;
    }
    for (; ready < k; ready++) {
        Piece *p = &pieces[ready];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, ready), "y*y*in", &p->offsets, &p->data, &p->width, &p->start))
            goto done;
        if ((p->width != 4 && p->width != 8) || p->start < 0 ||
            (p->start + n + 1) * (Py_ssize_t)p->width > p->offsets.len) {
            ready++;
            error = "a piece's offsets buffer is too short for start and count";
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    char *out = (char *)out_data.buf;
    int64_t pos = 0;
    for (Py_ssize_t i = 0; i < n && !error; i++) {
        if (out_width == 4) {
            int32_t x = (int32_t)pos;
            memcpy((char *)out_offsets.buf + i * 4, &x, 4);
        } else {
            memcpy((char *)out_offsets.buf + i * 8, &pos, 8);
        }
        for (Py_ssize_t j = 0; j < k; j++) {
            const Piece *p = &pieces[j];
            int64_t a = piece_offset(p, i), b = piece_offset(p, i + 1);
            if (a < 0 || b < a || b > p->data.len) {
                error = "a piece's offsets point outside its data buffer";
                break;
            }
            if (pos + (b - a) > out_data.len) {
                error = "the joined rows are longer than the output data buffer";
                break;
            }
            memcpy(out + pos, (const char *)p->data.buf + a, (size_t)(b - a));
            pos += b - a;
        }
    }
    if (!error && pos != out_data.len) error = "the joined rows are shorter than the output data buffer";
    if (!error && out_width == 4 && pos > INT32_MAX) error = "the joined rows overflow 32-bit offsets";
    if (!error) {
        if (out_width == 4) {
            int32_t x = (int32_t)pos;
            memcpy((char *)out_offsets.buf + n * 4, &x, 4);
        } else {
            memcpy((char *)out_offsets.buf + n * 8, &pos, 8);
        }
    }
    Py_END_ALLOW_THREADS
done:
    if (error && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, error);
    for (Py_ssize_t j = 0; j < ready; j++) {
        PyBuffer_Release(&pieces[j].offsets);
        PyBuffer_Release(&pieces[j].data);
    }
    PyMem_Free(pieces);
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&out_data);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u; }

/* frame_rows(offsets, data, offset_width, start, count, crcs, order, out)
 * The TFRecord frame of every value (uint64le length, uint32le masked CRC32C of those 8
 * bytes, the value, uint32le masked CRC32C of the value), in the order given by ``order``
 * (count int64 row indices), back to back into ``out`` (exactly the frames' total size).
 * crcs: each value's raw CRC32C (count uint32, from digests_and_crcs). One pass that
 * replaces framing every record and then taking them in split order (two copies). */
static PyObject *frame_rows(PyObject *self, PyObject *args) {
    Py_buffer offsets, data, crcs, order, out;
    int width;
    Py_ssize_t start, count;
    if (!PyArg_ParseTuple(args, "y*y*inny*y*w*", &offsets, &data, &width, &start, &count, &crcs, &order, &out))
        return NULL;
    const char *error = NULL;
    if ((width != 4 && width != 8) || start < 0 || count < 0 ||
        (start + count + 1) * (Py_ssize_t)width > offsets.len) {
        error = "offsets buffer too short for start and count";
    } else if (crcs.len < count * 4 || order.len < count * 8) {
        error = "crcs or order shorter than count";
    }
    if (!error) {
        Piece p = {offsets, data, width, start};
        const uint32_t *crc = (const uint32_t *)crcs.buf;
        const int64_t *rows = (const int64_t *)order.buf;
        char *o = (char *)out.buf;
        int64_t pos = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < count; i++) {
            int64_t r = rows[i];
            if (r < 0 || r >= count) {
                error = "order holds a row index outside 0..count-1";
                break;
            }
            int64_t a = piece_offset(&p, r), b = piece_offset(&p, r + 1);
            if (a < 0 || b < a || b > data.len) {
                error = "offsets point outside the data buffer";
                break;
            }
            uint64_t length = (uint64_t)(b - a);
            if (pos + (int64_t)length + 16 > out.len) {
                error = "the frames are longer than the output buffer";
                break;
            }
            unsigned char header[12];
            for (int k = 0; k < 8; k++) header[k] = (unsigned char)(length >> (8 * k));
            uint32_t head_crc = masked(crc32c(header, 8)), data_crc = masked(crc[r]);
            for (int k = 0; k < 4; k++) header[8 + k] = (unsigned char)(head_crc >> (8 * k));
            memcpy(o + pos, header, 12);
            memcpy(o + pos + 12, (const char *)data.buf + a, (size_t)length);
            for (int k = 0; k < 4; k++) o[pos + 12 + (int64_t)length + k] = (char)(data_crc >> (8 * k));
            pos += (int64_t)length + 16;
        }
        Py_END_ALLOW_THREADS
        if (!error && pos != out.len) error = "the frames are shorter than the output buffer";
    }
    if (error) PyErr_SetString(PyExc_ValueError, error);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    PyBuffer_Release(&crcs);
    PyBuffer_Release(&order);
    PyBuffer_Release(&out);
    if (error) return NULL;
    Py_RETURN_NONE;
}

/* leading_bytes(matrix, width, row_len, out): the first row_len[i] bytes of each row of a
 * C-contiguous matrix of ``width`` bytes per row, back to back into ``out`` (exactly their
 * total). What numpy does with a boolean mask over the whole matrix (a feature's bytes
 * where rows differ in length, e.g. nulls among floats), without the mask. */
static PyObject *leading_bytes(PyObject *self, PyObject *args) {
    Py_buffer matrix, row_len, out;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*ny*w*", &matrix, &width, &row_len, &out)) return NULL;
    const char *error = NULL;
    Py_ssize_t n = row_len.len / 8;
    if (width < 0 || (width == 0 && matrix.len) || (width && matrix.len != n * width)) {
        error = "the matrix is not row_len's rows of width bytes";
    } else {
        const int64_t *len = (const int64_t *)row_len.buf;
        const char *m = (const char *)matrix.buf;
        char *o = (char *)out.buf;
        int64_t pos = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            if (len[i] < 0 || len[i] > width) {
                error = "a row length is outside 0..width";
                break;
            }
            if (pos + len[i] > out.len) {
                error = "the rows are longer than the output buffer";
                break;
            }
            memcpy(o + pos, m + i * width, (size_t)len[i]);
            pos += len[i];
        }
        Py_END_ALLOW_THREADS
        if (!error && pos != out.len) error = "the rows are shorter than the output buffer";
    }
    if (error) PyErr_SetString(PyExc_ValueError, error);
    PyBuffer_Release(&matrix);
    PyBuffer_Release(&row_len);
    PyBuffer_Release(&out);
    if (error) return NULL;
    Py_RETURN_NONE;
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
    {"join_rows", join_rows, METH_VARARGS,
     "join_rows(pieces, n, out_offsets, out_data, out_width): row i = row i of every piece, back to back"},
    {"frame_rows", frame_rows, METH_VARARGS,
     "frame_rows(offsets, data, offset_width, start, count, crcs, order, out): TFRecord frames in the given order"},
    {"leading_bytes", leading_bytes, METH_VARARGS,
     "leading_bytes(matrix, width, row_len, out): the first row_len[i] bytes of each matrix row, back to back"},
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
