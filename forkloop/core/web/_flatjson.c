/* C twin of _flatjson.py (same names; setup.py builds it, the .py is the definition and what
 * FORKLOOP_NO_EXTENSIONS=1 runs).
 *
 * flat_object(data) -> str | None: json.dumps(data)'s text for a flat object (an exact dict of
 * exact str keys and exact str, int, bool or None values), None for anything else. The dict is
 * read once: every key and value is taken, with a reference, before anything is rendered, so
 * nothing rendering runs can change what is written. A string of printable ASCII other than
 * '"' and '\\' is written as itself between quotes (what json's escaper gives for it); any other
 * string goes through json.encoder.encode_basestring_ascii, an int through int's str(), as the
 * definition does. The text is ASCII and is written into one string of the exact size.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *escape;       /* json.encoder.encode_basestring_ascii */
static PyObject *text_null;    /* "null", "true", "false" */
static PyObject *text_true;
static PyObject *text_false;

#define SMALL_ITEMS 16

/* A rendered key or value: an ASCII str, written between quotes when `quoted`. */
typedef struct {
    PyObject *text;  /* a new reference */
    int quoted;
} piece;

/* 1 when json's ASCII escaper would give s back unchanged (between quotes): every character
 * printable ASCII, none of them '"' or '\\'. */
static int
is_plain(PyObject *s)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    if (!PyUnicode_IS_ASCII(s)) {
        return 0;
    }
    const unsigned char *p = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

/* A str as a JSON string: itself quoted, or the escaper's text. 0, or -1 with an exception. */
static int
render_str(PyObject *s, piece *out)
{
    if (is_plain(s)) {
        Py_INCREF(s);
        out->text = s;
        out->quoted = 1;
        return 0;
    }
    PyObject *escaped = PyObject_CallOneArg(escape, s);
    if (escaped == NULL) {
        return -1;
    }
    if (!PyUnicode_Check(escaped) || !PyUnicode_IS_ASCII(escaped)) {
        Py_DECREF(escaped);
        PyErr_SetString(PyExc_TypeError, "json's escaper returned no ASCII str");
        return -1;
    }
    out->text = escaped;
    out->quoted = 0;
    return 0;
}

static PyObject *
flat_object(PyObject *module, PyObject *data)
{
    if (!PyDict_CheckExact(data)) {
        Py_RETURN_NONE;
    }
    Py_ssize_t count = PyDict_GET_SIZE(data);
    PyObject *small[2 * SMALL_ITEMS];
    piece small_pieces[2 * SMALL_ITEMS];
    PyObject **items = small;
    piece *pieces = small_pieces;
    if (count > SMALL_ITEMS) {
        items = PyMem_Malloc(2 * count * sizeof(PyObject *));
        pieces = PyMem_Malloc(2 * count * sizeof(piece));
        if (items == NULL || pieces == NULL) {
            PyMem_Free(items);
            PyMem_Free(pieces);
            return PyErr_NoMemory();
        }
    }
    /* The dict, read once: each key and value with a reference, or None at the first that
     * is not flat. PyDict_Next runs no Python code. */
    PyObject *result = NULL;
    Py_ssize_t taken = 0, rendered = 0, pos = 0;
    PyObject *key, *value;
    int flat = 1;
    while (taken < count && PyDict_Next(data, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)
            || !(PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || value == Py_None
                 || value == Py_True || value == Py_False)) {
            flat = 0;
            break;
        }
        Py_INCREF(key);
        Py_INCREF(value);
        items[2 * taken] = key;
        items[2 * taken + 1] = value;
        taken++;
    }
    /* Rendered, and the text's size: "{" "}", ", " between members, ": " in each. When a
     * member is not flat, the members before it are still rendered, as the definition renders
     * them before it meets that member: an int past the digit limit raises there too. */
    Py_ssize_t size = 2 + (taken ? 4 * taken - 2 : 0);
    for (; rendered < 2 * taken; rendered++) {
        PyObject *item = items[rendered];
        piece *out = &pieces[rendered];
        if (PyUnicode_CheckExact(item)) {
            if (render_str(item, out) < 0) {
                goto done;
            }
        }
        else if (PyLong_CheckExact(item)) {
            out->text = PyObject_Str(item);  /* int.__repr__: its digit limit included */
            if (out->text == NULL) {
                goto done;
            }
            out->quoted = 0;
        }
        else {
            out->text = item == Py_None ? text_null : item == Py_True ? text_true : text_false;
            Py_INCREF(out->text);
            out->quoted = 0;
        }
        size += PyUnicode_GET_LENGTH(out->text) + 2 * out->quoted;
    }
    if (!flat) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    result = PyUnicode_New(size, 127);
    if (result == NULL) {
        goto done;
    }
    char *at = (char *)PyUnicode_1BYTE_DATA(result);
    *at++ = '{';
    for (Py_ssize_t i = 0; i < 2 * taken; i++) {
        if (i) {
            memcpy(at, i % 2 ? ": " : ", ", 2);
            at += 2;
        }
        piece *p = &pieces[i];
        Py_ssize_t n = PyUnicode_GET_LENGTH(p->text);
        if (p->quoted) {
            *at++ = '"';
        }
        memcpy(at, PyUnicode_1BYTE_DATA(p->text), n);
        at += n;
        if (p->quoted) {
            *at++ = '"';
        }
    }
    *at = '}';
done:
    for (Py_ssize_t i = 0; i < rendered; i++) {
        Py_DECREF(pieces[i].text);
    }
    for (Py_ssize_t i = 0; i < 2 * taken; i++) {
        Py_DECREF(items[i]);
    }
    if (items != small) {
        PyMem_Free(items);
        PyMem_Free(pieces);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"flat_object", flat_object, METH_O,
     "flat_object(data) -> str | None: json.dumps(data)'s text for a flat object, else None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "forkloop.core.web._flatjson",
    .m_doc = "C twin of _flatjson.py: the JSON text of a flat object.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__flatjson(void)
{
    PyObject *encoder = PyImport_ImportModule("json.encoder");
    if (encoder == NULL) {
        return NULL;
    }
    escape = PyObject_GetAttrString(encoder, "encode_basestring_ascii");
    Py_DECREF(encoder);
    if (escape == NULL) {
        return NULL;
    }
    text_null = PyUnicode_InternFromString("null");
    text_true = PyUnicode_InternFromString("true");
    text_false = PyUnicode_InternFromString("false");
    if (text_null == NULL || text_true == NULL || text_false == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
