/* unmask(data, at, start, length): the C twin of _unmask.py (same name, same behaviour;
 * setup.py builds it, the .py is the fallback and what FORKLOOP_NO_EXTENSIONS=1 runs).
 *
 * Every client frame is masked (RFC 6455 section 5.3). In Python the XOR of a short payload
 * costs two int.from_bytes, an int.to_bytes and the big-integer XOR, thousands of
 * instructions per message; here it is one pass over the bytes into the new bytes object.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
unmask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "unmask(data, at, start, length) takes 4 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "unmask() needs bytes");
        return NULL;
    }
    Py_ssize_t at = PyLong_AsSsize_t(args[1]);
    Py_ssize_t start = PyLong_AsSsize_t(args[2]);
    Py_ssize_t length = PyLong_AsSsize_t(args[3]);
    if ((at == -1 || start == -1 || length == -1) && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    if (at < 0 || start < 0 || length < 0 || at > size - 4 || start > size - length) {
        PyErr_SetString(PyExc_ValueError, "unmask(): key or payload outside the data");
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    PyObject *out = PyBytes_FromStringAndSize(NULL, length);
    if (out == NULL) {
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *key = src + at;
    const unsigned char *payload = src + start;
    for (Py_ssize_t i = 0; i < length; i++) {
        dst[i] = payload[i] ^ key[i & 3];
    }
    return out;
}

static PyMethodDef methods[] = {
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL,
     "unmask(data, at, start, length): data[start:start+length] XOR the key at data[at:at+4]."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "forkloop.core.websocket._unmask",
    "Unmasking a payload inside a received buffer (the C twin of _unmask.py).", 0, methods,
};

PyMODINIT_FUNC
PyInit__unmask(void)
{
    return PyModule_Create(&module_def);
}
