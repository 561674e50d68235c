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
    Py_ssize_t length = PyLong_AsSsize_t(length_obj);
    if (length == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            return NULL;
        }
        /* Out of Py_ssize_t's range: negative is ValueError first, as in the definition. */
        PyErr_Clear();
        PyObject *zero = PyLong_FromLong(0);
        if (zero == NULL) {
            return NULL;
        }
        int negative = PyObject_RichCompareBool(length_obj, zero, Py_LT);
        Py_DECREF(zero);
        if (negative < 0) {
            return NULL;
        }
        PyErr_SetString(negative ? PyExc_ValueError : PyExc_OverflowError,
                        negative ? "length must not be negative" : "length past sys.maxsize");
        return NULL;
    }
    if (length < 0) {
        PyErr_Format(PyExc_ValueError, "length must not be negative: %zd", length);
        return NULL;
    }
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
