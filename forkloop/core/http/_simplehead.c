/* Recognizing a simple request head: the C twin of _simplehead.py (same names and results;
 * setup.py builds it, the .py is the fallback, the definition and what FORKLOOP_NO_EXTENSIONS=1
 * runs). _simplehead.py's docstring says which heads are simple and what scan() returns.
 *
 * One forward pass over the head: each byte is classified once through a 256-entry table, the
 * search never runs past start + max_head, and anything outside the simple subset returns
 * None before any object is made, so llhttp sees those bytes as if this did not exist.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define C_TARGET 1 /* RFC 3986 pchar, "/", "?" */
#define C_TOKEN 2  /* RFC 9110 tchar */
#define C_VALUE 4  /* VCHAR, SP, HTAB */

static unsigned char classes[256];
static PyObject *method_names[7];
static const char *const method_text[7] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
                                           "PATCH"};

static void
init_classes(void)
{
    const char *alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (const char *p = alnum; *p; p++) {
        classes[(unsigned char)*p] |= C_TARGET | C_TOKEN;
    }
    for (const char *p = "-._~!$&'()*+,;=:@/?%"; *p; p++) {
        classes[(unsigned char)*p] |= C_TARGET;
    }
    for (const char *p = "!#$%&'*+-.^_`|~"; *p; p++) {
        classes[(unsigned char)*p] |= C_TOKEN;
    }
    for (int c = 0x20; c < 0x7F; c++) {
        classes[c] |= C_VALUE;
    }
    classes['\t'] |= C_VALUE;
}

static int
method_index(const char *p, Py_ssize_t n)
{
    for (int i = 0; i < 7; i++) {
        if ((Py_ssize_t)strlen(method_text[i]) == n && memcmp(p, method_text[i], n) == 0) {
            return i;
        }
    }
    return -1;
}

/* Case-insensitive compare of p[0:n] with a lower-case ASCII word of length n. */
static int
is_word(const char *p, Py_ssize_t n, const char *word)
{
    if ((Py_ssize_t)strlen(word) != n) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 'A' && c <= 'Z') {
            c += 0x20;
        }
        if (c != (unsigned char)word[i]) {
            return 0;
        }
    }
    return 1;
}

static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyTuple_Check(args[2]) ||
        PyTuple_GET_SIZE(args[2]) != 5) {
        PyErr_SetString(PyExc_TypeError, "scan(data: bytes, start: int, limits: tuple of "
                                         "five ints)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t lim[5];
    for (int i = 0; i < 5; i++) {
        lim[i] = PyLong_AsSsize_t(PyTuple_GET_ITEM(args[2], i));
        if (lim[i] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    Py_ssize_t max_head = lim[0], max_line = lim[1], max_field = lim[2];
    Py_ssize_t max_header_bytes = lim[3], max_fields = lim[4];
    const char *buf = PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (start < 0 || start > size || max_head < 0) {
        Py_RETURN_NONE;
    }
    if (max_head < size - start) {
        size = start + max_head;
    }

    /* The request line. */
    Py_ssize_t at = start;
    while (at < size && at < start + 8 && buf[at] != ' ') {
        at++;
    }
    if (at >= size || buf[at] != ' ') {
        Py_RETURN_NONE;
    }
    int method = method_index(buf + start, at - start);
    if (method < 0) {
        Py_RETURN_NONE;
    }
    at++;
    Py_ssize_t target_start = at;
    while (at < size && (classes[(unsigned char)buf[at]] & C_TARGET)) {
        at++;
    }
    Py_ssize_t target_length = at - target_start;
    if (target_length == 0 || target_length > max_line || buf[target_start] != '/' ||
        at + 11 > size || buf[at] != ' ' || memcmp(buf + at + 1, "HTTP/1.1\r\n", 10) != 0) {
        Py_RETURN_NONE;
    }
    at += 11;

    /* The field lines, checked whole before any object is made. */
    Py_ssize_t fields_start = at, count = 0, header_bytes = 0;
    Py_ssize_t host_at = -1;
    int connection = 0, keep_alive = 1;
    for (;;) {
        if (at + 2 > size) {
            Py_RETURN_NONE;
        }
        if (buf[at] == '\r' && buf[at + 1] == '\n') {
            break;
        }
        Py_ssize_t name_start = at;
        while (at < size && (classes[(unsigned char)buf[at]] & C_TOKEN)) {
            at++;
        }
        Py_ssize_t name_len = at - name_start;
        if (name_len == 0 || at >= size || buf[at] != ':') {
            Py_RETURN_NONE;
        }
        at++;
        Py_ssize_t value_start = at;
        while (at < size && (classes[(unsigned char)buf[at]] & C_VALUE)) {
            at++;
        }
        if (at + 2 > size || buf[at] != '\r' || buf[at + 1] != '\n') {
            Py_RETURN_NONE;
        }
        Py_ssize_t field = name_len + (at - value_start) + 2;
        header_bytes += field;
        if (field > max_field || header_bytes > max_header_bytes || count >= max_fields) {
            Py_RETURN_NONE;
        }
        Py_ssize_t v0 = value_start, v1 = at;
        while (v0 < v1 && (buf[v0] == ' ' || buf[v0] == '\t')) {
            v0++;
        }
        while (v1 > v0 && (buf[v1 - 1] == ' ' || buf[v1 - 1] == '\t')) {
            v1--;
        }
        const char *name = buf + name_start;
        if (is_word(name, name_len, "host")) {
            if (host_at >= 0) {
                Py_RETURN_NONE;
            }
            host_at = v0;
        }
        else if (is_word(name, name_len, "connection")) {
            if (connection) {
                Py_RETURN_NONE;
            }
            connection = 1;
            if (is_word(buf + v0, v1 - v0, "close")) {
                keep_alive = 0;
            }
            else if (!is_word(buf + v0, v1 - v0, "keep-alive")) {
                Py_RETURN_NONE;
            }
        }
        else if (is_word(name, name_len, "content-length") ||
                 is_word(name, name_len, "transfer-encoding") ||
                 is_word(name, name_len, "expect") || is_word(name, name_len, "upgrade") ||
                 is_word(name, name_len, "proxy-connection")) {
            Py_RETURN_NONE;
        }
        count++;
        at += 2;
    }
    if (host_at < 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t end = at + 2;

    /* The head is simple: make its objects, in a second pass over the checked lines. */
    PyObject *target = NULL, *fields = NULL, *host = NULL, *result = NULL;
    target = PyUnicode_DecodeASCII(buf + target_start, target_length, NULL);
    fields = PyList_New(count);
    if (target == NULL || fields == NULL) {
        goto error;
    }
    at = fields_start;
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *line = buf + at;
        const char *colon = memchr(line, ':', end - at);
        const char *eol = memchr(colon, '\r', buf + end - colon);
        const char *v0 = colon + 1, *v1 = eol;
        while (v0 < v1 && (*v0 == ' ' || *v0 == '\t')) {
            v0++;
        }
        while (v1 > v0 && (v1[-1] == ' ' || v1[-1] == '\t')) {
            v1--;
        }
        PyObject *name = PyBytes_FromStringAndSize(line, colon - line);
        PyObject *value = PyBytes_FromStringAndSize(v0, v1 - v0);
        PyObject *pair = (name && value) ? PyTuple_Pack(2, name, value) : NULL;
        if (pair != NULL && v0 - buf == host_at && host == NULL) {
            host = value;
            Py_INCREF(host);
        }
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            goto error;
        }
        PyList_SET_ITEM(fields, i, pair);
        at = (eol - buf) + 2;
    }
    if (host == NULL) { /* cannot happen: the Host line was among those checked */
        PyErr_SetString(PyExc_AssertionError, "simple head without its Host");
        goto error;
    }
    PyObject *end_obj = PyLong_FromSsize_t(end);
    result = end_obj == NULL ? NULL : PyTuple_New(6);
    if (result == NULL) {
        Py_XDECREF(end_obj);
        goto error;
    }
    PyObject *keep = keep_alive ? Py_True : Py_False;
    Py_INCREF(method_names[method]);
    Py_INCREF(keep);
    PyTuple_SET_ITEM(result, 0, end_obj);
    PyTuple_SET_ITEM(result, 1, method_names[method]);
    PyTuple_SET_ITEM(result, 2, target);
    PyTuple_SET_ITEM(result, 3, fields);
    PyTuple_SET_ITEM(result, 4, host);
    PyTuple_SET_ITEM(result, 5, keep);
    return result; /* the tuple took the references */
error:
    Py_XDECREF(target);
    Py_XDECREF(fields);
    Py_XDECREF(host);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "The simple head at data[start:], split; None if there is none."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_simplehead", "C twin of _simplehead.py.", -1, methods,
};

PyMODINIT_FUNC
PyInit__simplehead(void)
{
    init_classes();
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    PyObject *names = PyTuple_New(7);
    if (names == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    for (int i = 0; i < 7; i++) {
        PyObject *name = PyUnicode_InternFromString(method_text[i]);
        if (name == NULL) {
            Py_DECREF(names);
            Py_DECREF(module);
            return NULL;
        }
        method_names[i] = name;
        Py_INCREF(name);
        PyTuple_SET_ITEM(names, i, name);
    }
    if (PyModule_AddObject(module, "SIMPLE_METHODS", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(module);
        return NULL;
    }
    /* The parser takes the branch: this scan costs a third of llhttp's path. */
    Py_INCREF(Py_True);
    if (PyModule_AddObject(module, "CHEAPER", Py_True) < 0) {
        Py_DECREF(Py_True);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
