/* Where each TFRecord of a block starts, both CRCs checked: read-back's record walk, compiled.

   `blocks.python_walk` does the same in Python, one unpack and one append a record (0.18 us): on a log of
   scalars that walk was 40% of `tbimg inspect`, and the payload CRCs, computed by numpy a group at a
   time, another 12%. Here both take about 10 ns a record (the CRC by the CPU's own instruction where
   there is one). The Python walk stays as the way back (`TBIMG_RECORD_WALK=python`, or no compiler at
   install: the extension is optional) and as the reference the tests hold this one to.

   walk(buffer) -> (starts, position, payloads_ok)
     starts       int64 (native order) bytes: the start of each whole record whose length CRC holds,
                  each following from the one before;
     position     where the walk stopped: the first record that is cut off by the buffer's end, or whose
                  length fails its CRC (the caller says which, as before);
     payloads_ok  how many of the records, from the first, have a payload whose CRC holds: all of them,
                  or up to the first that fails.
   The GIL is let go while it walks: pieces of a file read on threads run at once. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_BYTES 12
#define FOOTER_BYTES 4
#define MASK_DELTA 0xa282ead8u
#define POLYNOMIAL 0x82f63b78u /* CRC-32C (Castagnoli), reflected */

static uint32_t table[8][256];

static void make_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (POLYNOMIAL & (0u - (crc & 1u)));
        table[0][i] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xff];
}

/* Eight bytes a step through eight tables: any CPU, either byte order. */
static uint32_t crc_by_tables(const uint8_t *p, size_t n) {
    uint32_t crc = 0xffffffffu;
    while (n >= 8) {
        crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        crc = table[7][crc & 0xff] ^ table[6][(crc >> 8) & 0xff] ^ table[5][(crc >> 16) & 0xff] ^
              table[4][crc >> 24] ^ table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--) crc = table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define HAVE_CRC_INSTRUCTION 1
/* SSE 4.2's crc32 instruction computes CRC-32C: eight bytes in a few cycles. */
__attribute__((target("sse4.2"))) static uint32_t crc_by_instruction(const uint8_t *p, size_t n) {
    uint64_t crc = 0xffffffffu;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        crc = _mm_crc32_u64(crc, word);
        p += 8;
        n -= 8;
    }
    uint32_t crc32 = (uint32_t)crc;
    while (n--) crc32 = _mm_crc32_u8(crc32, *p++);
    return ~crc32;
}
#endif

static uint32_t (*crc32c)(const uint8_t *, size_t) = crc_by_tables;

static uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + MASK_DELTA; }

static uint64_t little_u64(const uint8_t *p) {
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | p[i];
    return value;
}

static uint32_t little_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static PyObject *walk(PyObject *module, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const uint8_t *data = view.buf;
    size_t end = (size_t)view.len;
    size_t most = end / (HEADER_BYTES + FOOTER_BYTES) + 1;
    int64_t *starts = malloc(most * sizeof(int64_t));
    if (starts == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    size_t count = 0, position = 0, payloads_ok = (size_t)-1;
    Py_BEGIN_ALLOW_THREADS
    while (position + HEADER_BYTES <= end) {
        const uint8_t *record = data + position;
        uint64_t length = little_u64(record);
        if (masked(crc32c(record, 8)) != little_u32(record + 8)) break;
        if (end - position < HEADER_BYTES + FOOTER_BYTES || length > end - position - HEADER_BYTES - FOOTER_BYTES)
            break; /* cut off by the buffer's end */
        const uint8_t *payload = record + HEADER_BYTES;
        if (payloads_ok == (size_t)-1 && masked(crc32c(payload, (size_t)length)) != little_u32(payload + length))
            payloads_ok = count;
        starts[count++] = (int64_t)position;
        position += HEADER_BYTES + (size_t)length + FOOTER_BYTES;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (payloads_ok == (size_t)-1) payloads_ok = count;
    PyObject *found = PyBytes_FromStringAndSize((const char *)starts, (Py_ssize_t)(count * sizeof(int64_t)));
    free(starts);
    if (found == NULL) return NULL;
    return Py_BuildValue("(Nnn)", found, (Py_ssize_t)position, (Py_ssize_t)payloads_ok);
}

static PyObject *crc_of(PyObject *arg, uint32_t (*function)(const uint8_t *, size_t)) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t value = function(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(value);
}

static PyObject *crc(PyObject *module, PyObject *arg) { return crc_of(arg, crc32c); }

static PyObject *crc_tables(PyObject *module, PyObject *arg) { return crc_of(arg, crc_by_tables); }

static PyMethodDef methods[] = {
    {"walk", walk, METH_O, "walk(buffer) -> (starts, position, payloads_ok): the records of a block."},
    {"crc32c", crc, METH_O, "crc32c(data) -> the CRC-32C of data, unmasked, as the walk computes it."},
    {"crc32c_by_tables", crc_tables, METH_O, "crc32c(data) by the tables, for CPUs without the instruction."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_recordwalk", "TFRecord blocks walked, both CRCs checked (see blocks.python_walk).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__recordwalk(void) {
    make_tables();
#ifdef HAVE_CRC_INSTRUCTION
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) crc32c = crc_by_instruction;
#endif
    PyObject *module = PyModule_Create(&definition);
    const char *kind = crc32c == crc_by_tables ? "tables" : "instruction";
    if (module != NULL && PyModule_AddStringConstant(module, "crc_kind", kind) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
