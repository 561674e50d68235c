/* C twin of _plainhead.py (same names; setup.py builds it, the .py is the definition and what
 * FORKLOOP_NO_EXTENSIONS=1 runs).
 *
 * message(status_line, ctype_line, length, tail, body) -> bytes: the pieces of a plain
 * response written into one bytes object of the exact size, the Content-Length line's digits
 * formatted here (no intermediate line, tuple or join). bytes pieces (subclasses read as
 * their bytes) and an int length from 0 to PY_SSIZE_T_MAX (sys.maxsize), else TypeError,
 * ValueError or OverflowError, as the definition.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char LENGTH_NAME[] = "Content-Length: ";
#define LENGTH_NAME_SIZE ((Py_ssize_t)(sizeof(LENGTH_NAME) - 1))
#define MAX_DIGITS 20  /* a Py_ssize_t's decimal digits */

static PyObject *
message(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "message() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *length_obj = args[2];
    if (!PyLong_Check(length_obj)) {
        PyErr_Format(PyExc_TypeError, "length must be an int, not %.100s",
                     Py_TYPE(length_obj)->tp_name);
        return NULL;
    }
    /* The sign first, then the bound, as in the definition; `overflow` says which side of
     * a long long the value lies on when it does not fit one. */
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(length_obj, &overflow);
    if (value == -1 && !overflow && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow < 0 || (!overflow && value < 0)) {  /* on overflow, value is -1 */
        PyErr_SetString(PyExc_ValueError, "length must not be negative");
        return NULL;
    }
    if (overflow > 0 || value > PY_SSIZE_T_MAX) {
        PyErr_SetString(PyExc_OverflowError, "length past sys.maxsize");
        return NULL;
    }
    Py_ssize_t length = (Py_ssize_t)value;
    const int pieces[4] = {0, 1, 3, 4};
    Py_ssize_t size = LENGTH_NAME_SIZE + 2;
    for (int i = 0; i < 4; i++) {
        PyObject *piece = args[pieces[i]];
        if (!PyBytes_Check(piece)) {
            PyErr_Format(PyExc_TypeError, "a response piece must be bytes, not %.100s",
                         Py_TYPE(piece)->tp_name);
            return NULL;
        }
        size += PyBytes_GET_SIZE(piece);
    }
    char digits[MAX_DIGITS];
    int ndigits = 0;
    do {
        digits[MAX_DIGITS - 1 - ndigits++] = (char)('0' + length % 10);
        length /= 10;
    } while (length);
    size += ndigits;
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        return NULL;
    }
    char *at = PyBytes_AS_STRING(out);
    for (int i = 0; i < 4; i++) {
        PyObject *piece = args[pieces[i]];
        Py_ssize_t n = PyBytes_GET_SIZE(piece);
        memcpy(at, PyBytes_AS_STRING(piece), n);
        at += n;
        if (i == 1) {  /* after the Content-Type line: Content-Length */
            memcpy(at, LENGTH_NAME, LENGTH_NAME_SIZE);
            at += LENGTH_NAME_SIZE;
            memcpy(at, digits + MAX_DIGITS - ndigits, ndigits);
            at += ndigits;
            *at++ = '\r';
            *at++ = '\n';
        }
    }
    return out;
}

static PyMethodDef methods[] = {
    {"message", (PyCFunction)(void (*)(void))message, METH_FASTCALL,
     "message(status_line, ctype_line, length, tail, body) -> bytes: a plain response."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "forkloop.core.http._plainhead",
    .m_doc = "C twin of _plainhead.py: the bytes of a plain response.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__plainhead(void)
{
    return PyModule_Create(&module_def);
}
