/* One step of a coroutine inside a contextvars.Context, without exceptions for the common
 * outcomes: the C twin of _stepping.py (same names, same behaviour; setup.py builds it, the
 * .py is the fallback and what FORKLOOP_NO_EXTENSIONS=1 runs).
 *
 * The connection protocol runs most handlers to completion inside data_received
 * (protocol.py, _run_eagerly). From Python that is context.run(coro.send, None), and a
 * finished handler surfaces as a StopIteration: an exception object, a traceback entry and
 * the catch, on nearly every request. PyIter_Send reports the return instead.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *done;  /* DONE: what step() returns when the coroutine returned */

static PyObject *
step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "step(context, coro) takes exactly 2 arguments");
        return NULL;
    }
    PyObject *context = args[0];
    PyObject *coro = args[1];
    PyObject *result = NULL;
    if (PyContext_Enter(context) < 0) {
        return NULL;
    }
    PySendResult status = PyIter_Send(coro, Py_None, &result);
    /* Leave the context with the step's exception (if any) set aside. */
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *raised = status == PYGEN_ERROR ? PyErr_GetRaisedException() : NULL;
#else
    PyObject *type = NULL, *value = NULL, *traceback = NULL;
    if (status == PYGEN_ERROR) {
        PyErr_Fetch(&type, &value, &traceback);
    }
#endif
    int left = PyContext_Exit(context);
#if PY_VERSION_HEX >= 0x030C0000
    if (raised != NULL) {
        if (left < 0) {
            Py_DECREF(raised);  /* the context error wins: it means a broken invariant */
        } else {
            PyErr_SetRaisedException(raised);
        }
    }
#else
    if (status == PYGEN_ERROR) {
        if (left < 0) {
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
        } else {
            PyErr_Restore(type, value, traceback);
        }
    }
#endif
    if (left < 0 || status == PYGEN_ERROR) {
        Py_XDECREF(result);
        return NULL;
    }
    if (status == PYGEN_RETURN) {
        Py_DECREF(result);
        return Py_NewRef(done);
    }
    return result;  /* PYGEN_NEXT: what the coroutine yielded (a future, or None) */
}

static PyMethodDef methods[] = {
    {"step", (PyCFunction)(void (*)(void))step, METH_FASTCALL,
     "step(context, coro) -> DONE, or what coro yielded: coro.send(None) inside context."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "forkloop.core.server._stepping",
    "One coroutine step inside a context, returns reported without StopIteration.",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__stepping(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (done == NULL) {
        done = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
        if (done == NULL) {
            Py_DECREF(module);
            return NULL;
        }
    }
    if (PyModule_AddObjectRef(module, "DONE", done) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
