/*
 * examplegen._framing: the package's one C extension. It writes the serialized
 * tf.train.Example of a batch's rows straight from their typed columns; it computes the
 * SHA-256 digest and the CRC32C of every value of an Arrow binary array in one call; and
 * it writes the TFRecord frames of a batch in split order; and it walks the frames of a
 * TFRecord file read back, checking both CRCs of each.
 *
 * The hash split (TFX's rule: SHA-256 of the serialized Example) and the TFRecord framing
 * (CRC32C of the record) need both values for each record. From Python that is two calls
 * per record plus a bytes object per record, ~1.3 us of a Parquet row's ~3.5 us, most of
 * it call overhead (OpenSSL 3 sets up a digest context per hashlib object). This loop reads
 * the array's offsets and data buffers in place and calls OpenSSL's SHA-256 (SHA256_Init/Update/Final).
 *
 * Only glue is written here: SHA-256 is OpenSSL's, the one Python's hashlib uses; CRC32C
 * is the SSE4.2 instruction where the CPU has it, else the usual table. examplegen.tfrecord
 * and examplegen.encode use this module when it is built and fall back to hashlib,
 * google_crc32c, numpy and Arrow otherwise; tests/test_framing_native.py checks that both
 * give the same bytes.
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

/* A binary array's buffers as passed from Python: (offsets, data, offset_width, start),
 * start being the array's own offset. */
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

/* ------------------------------------------------------------------ tf.Example encoding
 * feature_rows and examples_of_columns write serialized tf.train.Feature and
 * tf.train.Example rows in two passes (sizes, then bytes) into buffers that ``alloc``
 * (Arrow's allocate_buffer) returns. The bytes are those of examplegen.encode's numpy path
 * and of protobuf's deterministic serialization; tests/test_framing_native.py compares
 * them. Wire format: Example{features=1}; Features{feature=1: map entry}; map entry
 * {key=1, value=2}; Feature{bytes_list=1, float_list=2, int64_list=3}; every list's
 * values are field 1 (packed for floats and int64s, negatives as 10-byte varints). */

static inline int varint_len(uint64_t v) { return 1 + (63 - __builtin_clzll(v | 1)) / 7; }

static inline char *put_varint(char *o, uint64_t v) {
    while (v >= 0x80) {
        *o++ = (char)((v & 0x7F) | 0x80);
        v >>= 7;
    }
    *o++ = (char)v;
    return o;
}

/* Arrow buffers for n + 1 offsets and ``total`` bytes from alloc(size), offsets int32
 * where total fits. On success *width is 4 or 8 and both views are held (release them). */
static int alloc_rows(PyObject *alloc, Py_ssize_t n, int64_t total, PyObject **offsets_obj, PyObject **data_obj,
                      Py_buffer *offsets, Py_buffer *data, int *width) {
    *width = total > INT32_MAX ? 8 : 4;
    *offsets_obj = PyObject_CallFunction(alloc, "n", (Py_ssize_t)((n + 1) * *width));
    if (!*offsets_obj) return -1;
    *data_obj = PyObject_CallFunction(alloc, "n", (Py_ssize_t)total);
    if (!*data_obj) return -1;
    if (PyObject_GetBuffer(*offsets_obj, offsets, PyBUF_WRITABLE) < 0) return -1;
    if (PyObject_GetBuffer(*data_obj, data, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(offsets);
        return -1;
    }
    if (offsets->len < (n + 1) * *width || data->len < total) {
        PyBuffer_Release(offsets);
        PyBuffer_Release(data);
        PyErr_SetString(PyExc_ValueError, "alloc returned a buffer smaller than asked for");
        return -1;
    }
    return 0;
}

static inline void put_offset(char *offsets, int width, Py_ssize_t i, int64_t pos) {
    if (width == 4) {
        int32_t x = (int32_t)pos;
        memcpy(offsets + i * 4, &x, 4);
    } else {
        memcpy(offsets + i * 8, &pos, 8);
    }
}

#define RAW 1 /* a column of serialized Features, written as they are */

/* One feature column: (tag, values, value_offsets, row_offsets, valid, null_len) from
 * Python. tag 0x0A bytes_list, 0x12 float_list, 0x1A int64_list, 0: every row an empty
 * Feature, or RAW: row i is value i, a Feature already serialized. values: int64 or little-endian float32 values, or the bytes' data buffer, whose
 * values are data[value_offsets[j]..value_offsets[j+1]] (int64 offsets; None for numbers).
 * row_offsets: None (row i is value i) or int64 offsets of each row's values (n + 1).
 * valid: None or one byte per row; a row with 0 is null: "tag 00" (an empty list) when
 * null_len is 2, nothing (an empty Feature) when it is 0. */
typedef struct {
    int tag, null_len;
    const char *values;
    const int64_t *value_offsets, *row_offsets;
    const uint8_t *valid;
    Py_buffer views[4]; /* values, value_offsets, row_offsets, valid; .obj NULL if not held */
    const char *prefix; /* for examples: "0a varint(len(key)) key 12" */
    int64_t prefix_len;
} Column;

static void release_column(Column *c) {
    for (int k = 0; k < 4; k++)
        if (c->views[k].obj) PyBuffer_Release(&c->views[k]);
}

/* Parses and checks a column tuple for n rows; on failure sets an exception. */
static int parse_column(PyObject *tuple, Py_ssize_t n, Column *c) {
    PyObject *objs[4];
    memset(c, 0, sizeof(*c));
    if (!PyArg_ParseTuple(tuple, "iOOOOi", &c->tag, &objs[0], &objs[1], &objs[2], &objs[3], &c->null_len)) return -1;
    if ((c->tag != 0 && c->tag != RAW && c->tag != 0x0A && c->tag != 0x12 && c->tag != 0x1A) ||
        (c->null_len != 0 && c->null_len != 2)) {
        PyErr_SetString(PyExc_ValueError, "a column's tag must be 0, 1, 0x0A, 0x12 or 0x1A and its null_len 0 or 2");
        return -1;
    }
    for (int k = 0; k < 4; k++) {
        if (objs[k] != Py_None && PyObject_GetBuffer(objs[k], &c->views[k], PyBUF_SIMPLE) < 0) return -1;
    }
    if (c->tag == 0) return 0;
    const char *error = NULL;
    Py_ssize_t count; /* values */
    c->values = (const char *)c->views[0].buf;
    if (c->tag == 0x0A || c->tag == RAW) {
        if (!c->views[1].obj || c->views[1].len < 8 || c->views[1].len % 8) {
            error = "a bytes or raw column needs int64 value_offsets";
            goto fail;
        }
        c->value_offsets = (const int64_t *)c->views[1].buf;
        count = c->views[1].len / 8 - 1;
        for (Py_ssize_t j = 0; j < count; j++) {
            if (c->value_offsets[j] < 0 || c->value_offsets[j + 1] < c->value_offsets[j] ||
                c->value_offsets[j + 1] > c->views[0].len) {
                error = "a column's value_offsets point outside its values buffer";
                goto fail;
            }
        }
    } else {
        count = c->views[0].len / (c->tag == 0x12 ? 4 : 8);
    }
    if (c->views[2].obj) {
        if (c->views[2].len != (n + 1) * 8) {
            error = "a column's row_offsets must hold n + 1 int64 values";
            goto fail;
        }
        c->row_offsets = (const int64_t *)c->views[2].buf;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (c->row_offsets[i] < 0 || c->row_offsets[i + 1] < c->row_offsets[i] || c->row_offsets[i + 1] > count) {
                error = "a column's row_offsets point outside its values";
                goto fail;
            }
        }
    } else if (count < n) {
        error = "a column has fewer values than rows";
        goto fail;
    }
    if (c->views[3].obj) {
        if (c->views[3].len != n) {
            error = "a column's valid must hold one byte per row";
            goto fail;
        }
        c->valid = (const uint8_t *)c->views[3].buf;
    }
    return 0;
fail:
    PyErr_SetString(PyExc_ValueError, error);
    return -1;
}

static inline uint64_t int_value(const Column *c, int64_t j) {
    uint64_t v;
    memcpy(&v, c->values + j * 8, 8);
    return v;
}

/* Size of row i's Feature; *payload gets the bytes of its values field(s), -1 for a row
 * written as "tag 00" or nothing. Bytes: "0a varint(P) [0a varint(len) value]...".
 * Packed: "tag varint(1 + varint_len(P) + P) 0a varint(P) values", or "tag 00" if P is 0. */
static inline int64_t feature_len(const Column *c, Py_ssize_t i, int64_t *payload) {
    if (c->tag == 0) {
        *payload = -1;
        return 0;
    }
    if (c->tag == RAW) {
        *payload = c->value_offsets[i + 1] - c->value_offsets[i];
        return *payload;
    }
    if (c->valid && !c->valid[i]) {
        *payload = -1;
        return c->null_len;
    }
    int64_t a = i, b = i + 1, p = 0;
    if (c->row_offsets) {
        a = c->row_offsets[i];
        b = c->row_offsets[i + 1];
    }
    if (c->tag == 0x12) {
        p = 4 * (b - a);
    } else if (c->tag == 0x1A) {
        for (int64_t j = a; j < b; j++) p += varint_len(int_value(c, j));
    } else {
        for (int64_t j = a; j < b; j++) {
            int64_t len = c->value_offsets[j + 1] - c->value_offsets[j];
            p += 1 + varint_len((uint64_t)len) + len;
        }
        *payload = p;
        return 1 + varint_len((uint64_t)p) + p;
    }
    *payload = p;
    if (p == 0) return 2;
    int64_t size = 1 + varint_len((uint64_t)p) + p;
    return 1 + varint_len((uint64_t)size) + size;
}

static inline char *put_feature(char *o, const Column *c, Py_ssize_t i, int64_t payload) {
    if (payload < 0) { /* an empty Feature, or a null row */
        if (c->tag && c->null_len) {
            *o++ = (char)c->tag;
            *o++ = 0;
        }
        return o;
    }
    if (c->tag == RAW) {
        memcpy(o, c->values + c->value_offsets[i], (size_t)payload);
        return o + payload;
    }
    int64_t a = i, b = i + 1;
    if (c->row_offsets) {
        a = c->row_offsets[i];
        b = c->row_offsets[i + 1];
    }
    *o++ = (char)c->tag;
    if (c->tag == 0x0A) {
        o = put_varint(o, (uint64_t)payload);
        for (int64_t j = a; j < b; j++) {
            int64_t start = c->value_offsets[j], len = c->value_offsets[j + 1] - start;
            *o++ = 0x0A;
            o = put_varint(o, (uint64_t)len);
            memcpy(o, c->values + start, (size_t)len);
            o += len;
        }
        return o;
    }
    if (payload == 0) {
        *o++ = 0;
        return o;
    }
    o = put_varint(o, (uint64_t)(1 + varint_len((uint64_t)payload) + payload));
    *o++ = 0x0A;
    o = put_varint(o, (uint64_t)payload);
    if (c->tag == 0x12) {
        memcpy(o, c->values + a * 4, (size_t)(4 * (b - a)));
        return o + 4 * (b - a);
    }
    for (int64_t j = a; j < b; j++) o = put_varint(o, int_value(c, j));
    return o;
}

/* feature_rows(column, n, alloc) -> (offsets buffer, data buffer, offset width)
 * The serialized tf.train.Feature of each of n rows of a column (see Column). */
static PyObject *feature_rows(PyObject *self, PyObject *args) {
    PyObject *tuple, *alloc;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!nO", &PyTuple_Type, &tuple, &n, &alloc)) return NULL;
    PyObject *offsets_obj = NULL, *data_obj = NULL, *result = NULL;
    int64_t *payloads = NULL;
    const char *error = NULL;
    Column c;
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "n must be >= 0");
        return NULL;
    }
    if (parse_column(tuple, n, &c) < 0) goto done;
    payloads = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!payloads) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t total = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) total += feature_len(&c, i, &payloads[i]);
    Py_END_ALLOW_THREADS
    Py_buffer out_offsets, out_data;
    int width;
    if (alloc_rows(alloc, n, total, &offsets_obj, &data_obj, &out_offsets, &out_data, &width) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    char *start = (char *)out_data.buf, *o = start;
    for (Py_ssize_t i = 0; i < n; i++) {
        put_offset((char *)out_offsets.buf, width, i, o - start);
        o = put_feature(o, &c, i, payloads[i]);
    }
    put_offset((char *)out_offsets.buf, width, n, o - start);
    if (o - start != total) error = "internal error: features written differ from their computed size";
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&out_data);
    if (!error) result = Py_BuildValue("OOi", offsets_obj, data_obj, width);
done:
    if (error && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, error);
    release_column(&c);
    PyMem_Free(payloads);
    Py_XDECREF(offsets_obj);
    Py_XDECREF(data_obj);
    return result;
}

/* The map entry of a feature of f bytes: "0a varint(E) prefix varint(f) feature". */
static inline int64_t entry_len(int64_t prefix_len, int64_t f) {
    int64_t inner = prefix_len + varint_len((uint64_t)f) + f;
    return 1 + varint_len((uint64_t)inner) + inner;
}

static inline char *put_entry_head(char *o, const char *prefix, int64_t prefix_len, int64_t f) {
    *o++ = 0x0A;
    o = put_varint(o, (uint64_t)(prefix_len + varint_len((uint64_t)f) + f));
    memcpy(o, prefix, (size_t)prefix_len);
    return put_varint(o + prefix_len, (uint64_t)f);
}

/* Entry prefixes "0a varint(len(key)) key 12" of a list of bytes keys, back to back in
 * one PyMem buffer; prefix j starts at at[j]. */
static char *key_prefixes(PyObject *keys, int64_t **at) {
    Py_ssize_t k = PyList_GET_SIZE(keys);
    int64_t size = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *key = PyList_GET_ITEM(keys, j);
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "keys must be bytes");
            return NULL;
        }
        size += 2 + varint_len((uint64_t)PyBytes_GET_SIZE(key)) + PyBytes_GET_SIZE(key);
    }
    *at = PyMem_Malloc((size_t)(k + 1) * sizeof(int64_t));
    char *data = PyMem_Malloc((size_t)(size ? size : 1));
    if (!*at || !data) {
        PyMem_Free(*at);
        *at = NULL;
        PyMem_Free(data);
        PyErr_NoMemory();
        return NULL;
    }
    char *o = data;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *key = PyList_GET_ITEM(keys, j);
        (*at)[j] = o - data;
        *o++ = 0x0A;
        o = put_varint(o, (uint64_t)PyBytes_GET_SIZE(key));
        memcpy(o, PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
        o += PyBytes_GET_SIZE(key);
        *o++ = 0x12;
    }
    (*at)[k] = o - data;
    return data;
}

/* examples_of_columns works column by column, in blocks of rows whose output stays in
 * the CPU cache, with one tight loop per kind of scalar column: a loop per row over every
 * column that dispatches on each column's kind cost ~300 instructions per feature. */
#define BLOCK 256

/* Adds the map entry size of each row's feature of column c to totals[0..n). */
static void add_entry_sizes(const Column *c, Py_ssize_t n, int64_t *totals) {
    const int64_t pl = c->prefix_len;
    const uint8_t *valid = c->valid;
    if (!c->row_offsets && c->tag == 0x12) {
        int64_t full = entry_len(pl, 8), null = entry_len(pl, c->null_len);
        for (Py_ssize_t i = 0; i < n; i++) totals[i] += (valid && !valid[i]) ? null : full;
    } else if (!c->row_offsets && c->tag == 0x1A) {
        int64_t null = entry_len(pl, c->null_len);
        for (Py_ssize_t i = 0; i < n; i++)
            totals[i] += (valid && !valid[i]) ? null : entry_len(pl, 4 + varint_len(int_value(c, i)));
    } else {
        int64_t payload;
        for (Py_ssize_t i = 0; i < n; i++) totals[i] += entry_len(pl, feature_len(c, i, &payload));
    }
}

/* Writes the map entry of rows from..to-1 of column c at cursor[i - from], advancing it.
 * head: "0a varint(E) prefix 08 12 06 0a 04" of a float scalar (head_len bytes; 0: none). */
static void put_entries(const Column *c, Py_ssize_t from, Py_ssize_t to, char **cursor, const char *head,
                        int64_t head_len) {
    const int64_t pl = c->prefix_len;
    const uint8_t *valid = c->valid;
    if (!c->row_offsets && c->tag == 0x12 && head_len) {
        for (Py_ssize_t i = from; i < to; i++) {
            char *o = cursor[i - from];
            if (valid && !valid[i]) {
                o = put_entry_head(o, c->prefix, pl, c->null_len);
                o = put_feature(o, c, i, -1);
            } else {
                memcpy(o, head, (size_t)head_len);
                o += head_len;
                memcpy(o, c->values + i * 4, 4);
                o += 4;
            }
            cursor[i - from] = o;
        }
    } else if (!c->row_offsets && c->tag == 0x1A) {
        for (Py_ssize_t i = from; i < to; i++) {
            char *o = cursor[i - from];
            if (valid && !valid[i]) {
                o = put_entry_head(o, c->prefix, pl, c->null_len);
                o = put_feature(o, c, i, -1);
            } else {
                uint64_t v = int_value(c, i);
                int len = varint_len(v);
                o = put_entry_head(o, c->prefix, pl, 4 + len);
                o[0] = 0x1A;
                o[1] = (char)(len + 2);
                o[2] = 0x0A;
                o[3] = (char)len;
                o = put_varint(o + 4, v);
            }
            cursor[i - from] = o;
        }
    } else {
        for (Py_ssize_t i = from; i < to; i++) {
            int64_t payload, f = feature_len(c, i, &payload);
            char *o = put_entry_head(cursor[i - from], c->prefix, pl, f);
            cursor[i - from] = put_feature(o, c, i, payload);
        }
    }
}

/* examples_of_columns(keys, columns, n, alloc) -> (offsets buffer, data buffer, width)
 * The serialized tf.train.Example of each of n rows straight from its feature columns
 * (see Column), keys the UTF-8 names in the order to write them (upb's deterministic
 * order): "0a varint(F)" then each feature's map entry. */
static PyObject *examples_of_columns(PyObject *self, PyObject *args) {
    PyObject *keys, *list, *alloc;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!O!nO", &PyList_Type, &keys, &PyList_Type, &list, &n, &alloc)) return NULL;
    Py_ssize_t k = PyList_GET_SIZE(list), ready = 0;
    Column *cols = PyMem_Calloc(k ? k : 1, sizeof(Column));
    int64_t *totals = NULL, *at = NULL, *head_len = NULL;
    char *prefixes = NULL, *heads = NULL;
    PyObject *offsets_obj = NULL, *data_obj = NULL, *result = NULL;
    const char *error = NULL;
    if (!cols) return PyErr_NoMemory();
    if (PyList_GET_SIZE(keys) != k || n < 0) {
        error = "one key per column and n >= 0";
        goto done;
    }
    for (; ready < k; ready++) {
        if (parse_column(PyList_GET_ITEM(list, ready), n, &cols[ready]) < 0) {
            ready++;
            goto done;
        }
    }
    if (!(prefixes = key_prefixes(keys, &at))) goto done;
    totals = PyMem_Calloc((size_t)(n ? n : 1), sizeof(int64_t));
    head_len = PyMem_Calloc((size_t)(k ? k : 1), sizeof(int64_t));
    heads = PyMem_Calloc((size_t)(k ? k : 1), 64);
    if (!totals || !head_len || !heads) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < k; j++) {
        Column *c = &cols[j];
        c->prefix = prefixes + at[j];
        c->prefix_len = at[j + 1] - at[j];
        if (c->tag == 0x12 && !c->row_offsets && entry_len(c->prefix_len, 8) - 4 <= 64) {
            char *h = put_entry_head(heads + 64 * j, c->prefix, c->prefix_len, 8);
            memcpy(h, "\x12\x06\x0a\x04", 4);
            head_len[j] = h + 4 - (heads + 64 * j);
        }
    }
    int64_t total = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < k; j++) add_entry_sizes(&cols[j], n, totals);
    for (Py_ssize_t i = 0; i < n; i++) total += 1 + varint_len((uint64_t)totals[i]) + totals[i];
    Py_END_ALLOW_THREADS
    Py_buffer out_offsets, out_data;
    int width;
    if (alloc_rows(alloc, n, total, &offsets_obj, &data_obj, &out_offsets, &out_data, &width) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    char *start = (char *)out_data.buf, *o = start, *cursor[BLOCK];
    for (Py_ssize_t from = 0; from < n; from += BLOCK) {
        Py_ssize_t to = from + BLOCK < n ? from + BLOCK : n;
        for (Py_ssize_t i = from; i < to; i++) {
            put_offset((char *)out_offsets.buf, width, i, o - start);
            cursor[i - from] = put_varint(o + 1, (uint64_t)totals[i]);
            *o = 0x0A;
            o = cursor[i - from] + totals[i];
        }
        for (Py_ssize_t j = 0; j < k; j++) put_entries(&cols[j], from, to, cursor, heads + 64 * j, head_len[j]);
        if (cursor[to - 1 - from] != o) {
            error = "internal error: examples written differ from their computed size";
            break;
        }
    }
    put_offset((char *)out_offsets.buf, width, n, o - start);
    if (o - start != total) error = "internal error: examples written differ from their computed size";
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&out_data);
    if (!error) result = Py_BuildValue("OOi", offsets_obj, data_obj, width);
done:
    if (error && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, error);
    for (Py_ssize_t j = 0; j < ready; j++) release_column(&cols[j]);
    PyMem_Free(cols);
    PyMem_Free(totals);
    PyMem_Free(at);
    PyMem_Free(prefixes);
    PyMem_Free(heads);
    PyMem_Free(head_len);
    Py_XDECREF(offsets_obj);
    Py_XDECREF(data_obj);
    return result;
}

/* ------------------------------------------------------------------ TFRecord reading
 * frame_starts and bad_frame_data walk the frames of a decompressed chunk and check both
 * CRCs of each, what examplegen.tfrecord does per frame in Python otherwise (~1 us per
 * record); sha256_digests hashes a list of records for the hash split of imported ones. */

/* frame_starts(buf) -> (starts, stop, frame_size, bad)
 * starts: int64 offsets (bytes, native order) of the complete frames at the front of buf;
 * stop: the offset after the last of them; frame_size: the size of the incomplete frame
 * after it, 0 if its header is incomplete too; bad: the index of the first frame whose
 * length CRC does not match (-1 if none: the walk stops there, starts holding the frames
 * before it and stop its offset). */
static PyObject *frame_starts(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    const uint8_t *b = (const uint8_t *)buf.buf;
    Py_ssize_t end = buf.len, pos = 0, n = 0, bad = -1;
    int64_t frame_size = 0;
    PyObject *starts = PyBytes_FromStringAndSize(NULL, (end / 16 + 1) * 8);
    if (!starts) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    int64_t *out = (int64_t *)PyBytes_AS_STRING(starts);
    Py_BEGIN_ALLOW_THREADS
    while (pos + 12 <= end) {
        uint64_t length;
        uint32_t stored;
        memcpy(&length, b + pos, 8);
        memcpy(&stored, b + pos + 8, 4);
        if (masked(crc32c(b + pos, 8)) != stored) {
            bad = n;
            break;
        }
        if (end - pos < 16 || length > (uint64_t)(end - pos - 16)) {
            frame_size = length > (uint64_t)INT64_MAX - 16 ? INT64_MAX : (int64_t)length + 16;
            break;
        }
        out[n++] = pos;
        pos += 16 + (Py_ssize_t)length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&buf);
    if (_PyBytes_Resize(&starts, n * 8) < 0) return NULL;
    return Py_BuildValue("NnLn", starts, pos, (long long)frame_size, bad);
}

/* bad_frame_data(buf, starts, stop) -> the index of the first frame (at the int64 offsets
 * ``starts``, the last ending at ``stop``) whose data CRC does not match, or -1. */
static PyObject *bad_frame_data(PyObject *self, PyObject *args) {
    Py_buffer buf, starts;
    Py_ssize_t stop;
    if (!PyArg_ParseTuple(args, "y*y*n", &buf, &starts, &stop)) return NULL;
    const uint8_t *b = (const uint8_t *)buf.buf;
    const int64_t *at = (const int64_t *)starts.buf;
    Py_ssize_t n = starts.len / 8, bad = -1;
    const char *error = NULL;
    if (stop < 0 || stop > buf.len) error = "stop is outside the buffer";
    for (Py_ssize_t i = 0; i < n && !error; i++) {
        int64_t next = i + 1 < n ? at[i + 1] : stop;
        if (at[i] < 0 || next - at[i] < 16 || next > buf.len) error = "frame offsets outside the buffer";
    }
    if (!error) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t next = i + 1 < n ? at[i + 1] : stop;
            uint32_t stored;
            memcpy(&stored, b + next - 4, 4);
            if (masked(crc32c(b + at[i] + 12, (size_t)(next - 16 - at[i]))) != stored) {
                bad = i;
                break;
            }
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&buf);
    PyBuffer_Release(&starts);
    if (error) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    return PyLong_FromSsize_t(bad);
}

/* frame_digests(offsets, data, offset_width, start, count) -> the SHA-256 digest of the
 * payload of each TFRecord frame of a binary array of frames (the frame without its
 * 12-byte header and 4-byte footer), 32 bytes each, back to back: the hash split of
 * imported records without a bytes object per record. */
static PyObject *frame_digests(PyObject *self, PyObject *args) {
    Py_buffer offsets, data;
    int width;
    Py_ssize_t start, count;
    if (!PyArg_ParseTuple(args, "y*y*inn", &offsets, &data, &width, &start, &count)) return NULL;
    PyObject *digests = NULL;
    const char *error = NULL;
    Piece p = {offsets, data, width, start};
    if ((width != 4 && width != 8) || start < 0 || count < 0 || (start + count + 1) * (Py_ssize_t)width > offsets.len) {
        error = "offsets buffer too short for start and count";
    } else {
        for (Py_ssize_t i = 0; i < count && !error; i++) {
            int64_t a = piece_offset(&p, i), b = piece_offset(&p, i + 1);
            if (a < 0 || b - a < 16 || b > data.len) error = "a frame is shorter than 16 bytes or outside the data buffer";
        }
    }
    if (!error && (digests = PyBytes_FromStringAndSize(NULL, count * 32))) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(digests);
        const uint8_t *base = (const uint8_t *)data.buf;
        Py_BEGIN_ALLOW_THREADS
        SHA256_CTX sha;
        for (Py_ssize_t i = 0; i < count; i++) {
            int64_t a = piece_offset(&p, i), b = piece_offset(&p, i + 1);
            SHA256_Init(&sha);
            SHA256_Update(&sha, base + a + 12, (size_t)(b - a - 16));
            SHA256_Final(out + 32 * i, &sha);
        }
        Py_END_ALLOW_THREADS
    }
    if (error) PyErr_SetString(PyExc_ValueError, error);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return digests;
}

/* sha256_digests(records) -> the 32-byte SHA-256 digests of a list of bytes, back to back. */
static PyObject *sha256_digests(PyObject *self, PyObject *args) {
    PyObject *list;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &list)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(list);
    PyObject **items = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(PyObject *));
    if (!items) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) { /* held, so the hashing can run without the GIL */
        items[i] = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(items[i])) {
            PyMem_Free(items);
            PyErr_SetString(PyExc_TypeError, "records must be bytes");
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) Py_INCREF(items[i]);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 32);
    if (out) {
        unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
        Py_BEGIN_ALLOW_THREADS
        SHA256_CTX ctx;
        for (Py_ssize_t i = 0; i < n; i++) {
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]));
            SHA256_Final(o + 32 * i, &ctx);
        }
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(items[i]);
    PyMem_Free(items);
    return out;
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
    {"frame_rows", frame_rows, METH_VARARGS,
     "frame_rows(offsets, data, offset_width, start, count, crcs, order, out): TFRecord frames in the given order"},
    {"feature_rows", feature_rows, METH_VARARGS,
     "feature_rows(column, n, alloc) -> (offsets, data, width): serialized tf.train.Feature rows"},
    {"examples_of_columns", examples_of_columns, METH_VARARGS,
     "examples_of_columns(keys, columns, n, alloc) -> (offsets, data, width): serialized tf.train.Example rows"},
    {"frame_starts", frame_starts, METH_VARARGS,
     "frame_starts(buf) -> (starts, stop, frame_size, bad): the complete TFRecord frames at the front of buf"},
    {"bad_frame_data", bad_frame_data, METH_VARARGS,
     "bad_frame_data(buf, starts, stop) -> the first frame whose data CRC does not match, or -1"},
    {"frame_digests", frame_digests, METH_VARARGS,
     "frame_digests(offsets, data, offset_width, start, count) -> the SHA-256 digests of the frames' payloads"},
    {"sha256_digests", sha256_digests, METH_VARARGS,
     "sha256_digests(records) -> the SHA-256 digests of a list of bytes, back to back"},
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
