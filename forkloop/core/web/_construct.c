/* A vectorcall constructor for an exact class: the C twin of _construct.py (same names; setup.py
 * builds it, the .py is the fallback and what FORKLOOP_NO_EXTENSIONS=1 runs).
 *
 * CPython 3.11 and 3.12 call a class defined in Python through type.__call__ with an argument
 * tuple and a keyword dict: web.Response(text=...) builds both, and slot_tp_init unpacks the
 * dict again to call __init__. About 1,500 machine instructions per response go to that
 * packing, a twentieth of a whole keep-alive request. A type may carry its own vectorcall
 * function (tp_vectorcall, used when its metaclass is exactly `type`, and never inherited by
 * subclasses); install(cls) sets it to construct(), which does what type.__call__ does for a
 * class with object.__new__ and a Python __init__ (allocate through object.__new__, call
 * __init__ with the same arguments, refuse a non-None result) without the packing. Anything
 * else (a __new__ of its own, an __init__ that is not a Python function, an abstract class)
 * takes type.__call__ itself, so behaviour is the same as without it. From CPython 3.13 on,
 * the interpreter specializes such calls itself and install() does nothing.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *init_name;   /* "__init__", interned */
static PyObject *empty_args;  /* () for object.__new__ */

#define SMALL_STACK 12

static PyObject *
generic_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    /* type.__call__ with a tuple and a dict, as when nothing is installed. */
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *tuple = PyTuple_New(nargs);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    PyObject *kwargs = NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            Py_DECREF(tuple);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nkw; i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_DECREF(tuple);
                Py_DECREF(kwargs);
                return NULL;
            }
        }
    }
    PyObject *result = Py_TYPE(callable)->tp_call(callable, tuple, kwargs);
    Py_DECREF(tuple);
    Py_XDECREF(kwargs);
    return result;
}

static PyObject *
construct(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyTypeObject *type = (PyTypeObject *)callable;
    if (type->tp_new != PyBaseObject_Type.tp_new
        || (type->tp_flags & Py_TPFLAGS_IS_ABSTRACT)
        || Py_TYPE(callable)->tp_call != PyType_Type.tp_call) {
        return generic_call(callable, args, nargsf, kwnames);
    }
    PyObject *init = _PyType_Lookup(type, init_name);  /* borrowed */
    if (init == NULL || !PyFunction_Check(init)) {
        return generic_call(callable, args, nargsf, kwnames);
    }
    Py_INCREF(init);
    /* object.__new__ with no arguments: allocation and the instance's inline attribute
     * values, exactly as type.__call__ gets them. */
    PyObject *self = type->tp_new(type, empty_args, NULL);
    if (self == NULL) {
        Py_DECREF(init);
        return NULL;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames));
    PyObject *result;
    if (nargsf & PY_VECTORCALL_ARGUMENTS_OFFSET) {
        /* The caller lets us borrow the slot before the arguments for `self`. */
        PyObject **stack = (PyObject **)args - 1;
        PyObject *saved = stack[0];
        stack[0] = self;
        result = PyObject_Vectorcall(init, stack, nargs + 1, kwnames);
        stack[0] = saved;
    }
    else {
        PyObject *small[SMALL_STACK];
        PyObject **stack = small;
        if (total + 1 > SMALL_STACK) {
            stack = PyMem_Malloc((total + 1) * sizeof(PyObject *));
            if (stack == NULL) {
                Py_DECREF(init);
                Py_DECREF(self);
                return PyErr_NoMemory();
            }
        }
        stack[0] = self;
        memcpy(stack + 1, args, total * sizeof(PyObject *));
        result = PyObject_Vectorcall(init, stack, nargs + 1, kwnames);
        if (stack != small) {
            PyMem_Free(stack);
        }
    }
    Py_DECREF(init);
    if (result == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    if (result != Py_None) {
        PyErr_Format(PyExc_TypeError, "__init__() should return None, not '%.200s'",
                     Py_TYPE(result)->tp_name);
        Py_DECREF(result);
        Py_DECREF(self);
        return NULL;
    }
    Py_DECREF(result);
    return self;
}

static PyObject *
install(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls) || !(((PyTypeObject *)cls)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "install() takes a class defined in Python");
        return NULL;
    }
    if (Py_TYPE(cls) != &PyType_Type) {
        /* Only `type` calls tp_vectorcall; any other metaclass keeps its own __call__. */
        Py_RETURN_FALSE;
    }
#if PY_VERSION_HEX >= 0x030D0000
    /* 3.13's interpreter specializes such a call itself (CALL_ALLOC_AND_ENTER_INIT). */
    Py_RETURN_FALSE;
#endif
    ((PyTypeObject *)cls)->tp_vectorcall = construct;
    Py_RETURN_TRUE;
}

static PyObject *
installed(PyObject *module, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "installed() takes a class");
        return NULL;
    }
    return PyBool_FromLong(((PyTypeObject *)cls)->tp_vectorcall == construct);
}

static PyMethodDef methods[] = {
    {"install", install, METH_O,
     "install(cls) -> bool: calls of exactly cls skip type.__call__'s argument packing."},
    {"installed", installed, METH_O, "installed(cls) -> bool: whether install(cls) took."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "forkloop.core.web._construct",
    .m_doc = "A vectorcall constructor for an exact class (C twin of _construct.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__construct(void)
{
    init_name = PyUnicode_InternFromString("__init__");
    if (init_name == NULL) {
        return NULL;
    }
    empty_args = PyTuple_New(0);
    if (empty_args == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
