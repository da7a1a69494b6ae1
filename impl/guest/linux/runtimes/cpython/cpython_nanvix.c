/* The CPython driver: CPython 3.11 embedded, with the `nanvix` module of Python functions, the
 * same as MicroPython's (runtimes/micropython/modules/nanvix): the snapshot point, the result,
 * the key-value store and the log, each a private system call of the Linux-ABI layer.
 *
 * The interpreter is configured here, not found: the standard library is the zip built into
 * the image (/.nanvix/python311.zip, the only entry of sys.path), no site, no environment, no
 * bytecode written. Then it runs the driver script (/.nanvix/boot.py, shared with MicroPython),
 * which loads the function, stops at the snapshot point and calls handle() per invocation. The
 * invocation ends with _exit: finalising the interpreter would only cost the invocation time. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "nanvix_abi.h"
#include "nanvix_linux.h"

static uint8_t value_buf[NX_DATA_SLOT];

/* A kv or log request: 0 and its answer in *result, or -1 (an OSError set) if the request
 * itself is refused. */
static int request(uint32_t op, const char *k, Py_ssize_t klen, const void *val, Py_ssize_t vlen, uint64_t arg,
                   uint32_t *got, int64_t *result)
{
    struct nx_sys_request r = {
        .opcode = op, .name = k, .name_len = (uint32_t)klen, .value = val, .value_len = (uint32_t)vlen,
        .out = value_buf, .out_cap = got ? sizeof value_buf : 0, .arg = arg,
    };
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        errno = EINVAL;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (syscall(NX_SYS_REQUEST, &r) != 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (got)
        *got = r.out_len;
    *result = r.result;
    return 0;
}

static PyObject *errno_error(int64_t r)
{
    errno = (int)-r;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* str or bytes, as the MicroPython module takes them: a pointer and a length into the object */
static int str_or_bytes(PyObject *o, const char **p, Py_ssize_t *n)
{
    if (PyUnicode_Check(o)) {
        *p = PyUnicode_AsUTF8AndSize(o, n);
        return *p ? 0 : -1;
    }
    if (PyBytes_Check(o)) {
        *p = PyBytes_AS_STRING(o);
        *n = PyBytes_GET_SIZE(o);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "expected str or bytes, not %s", Py_TYPE(o)->tp_name);
    return -1;
}

static PyObject *nx_snapshot(PyObject *self, PyObject *unused)
{
    /* Everything alive now (the interpreter, the function's module) moves to the collector's
     * permanent generation: an invocation's collections then never walk it, so they touch
     * (and copy from the snapshot) only the invocation's own pages. */
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(r);
    r = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    Py_XDECREF(gc);
    if (!r)
        return NULL;
    Py_DECREF(r);
    syscall(NX_SYS_SNAPSHOT);
    /* (boot.py seeds `random` afresh after this point, for both runtimes) */
    Py_RETURN_NONE;
}

static PyObject *nx_result(PyObject *self, PyObject *data)
{
    const char *p;
    Py_ssize_t n;
    if (str_or_bytes(data, &p, &n) < 0)
        return NULL;
    syscall(NX_SYS_RESULT, p, (size_t)n);
    Py_RETURN_NONE;
}

static PyObject *nx_kv_get(PyObject *self, PyObject *key)
{
    const char *k;
    Py_ssize_t kn;
    uint32_t got = 0;
    int64_t r;
    if (str_or_bytes(key, &k, &kn) < 0 || request(NX_OP_KV_GET, k, kn, NULL, 0, 0, &got, &r) < 0)
        return NULL;
    if (r == -NX_ENOENT)
        Py_RETURN_NONE;
    if (r < 0)
        return errno_error(r);
    return PyBytes_FromStringAndSize((const char *)value_buf, got);
}

static PyObject *nx_kv_put(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k, *v;
    Py_ssize_t kn, vn;
    int64_t r;
    if (!_PyArg_CheckPositional("kv_put", nargs, 2, 2) || str_or_bytes(args[0], &k, &kn) < 0 ||
        str_or_bytes(args[1], &v, &vn) < 0 || request(NX_OP_KV_PUT, k, kn, v, vn, 0, NULL, &r) < 0)
        return NULL;
    if (r < 0)
        return errno_error(r);
    Py_RETURN_NONE;
}

static PyObject *nx_kv_add(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *k;
    Py_ssize_t kn;
    long long delta = 1;
    int64_t r;
    if (!_PyArg_CheckPositional("kv_add", nargs, 1, 2) || str_or_bytes(args[0], &k, &kn) < 0)
        return NULL;
    if (nargs > 1 && (delta = PyLong_AsLongLong(args[1])) == -1 && PyErr_Occurred())
        return NULL;
    if (request(NX_OP_KV_ADD, k, kn, NULL, 0, (uint64_t)(int64_t)delta, NULL, &r) < 0)
        return NULL;
    if (r < 0 && r >= -133)   /* (an error code; a counter that low is not told apart) */
        return errno_error(r);
    return PyLong_FromLongLong(r);
}

static PyObject *nx_kv_delete(PyObject *self, PyObject *key)
{
    const char *k;
    Py_ssize_t kn;
    int64_t r;
    if (str_or_bytes(key, &k, &kn) < 0 || request(NX_OP_KV_DELETE, k, kn, NULL, 0, 0, NULL, &r) < 0)
        return NULL;
    if (r < 0 && r != -NX_ENOENT)
        return errno_error(r);
    return PyBool_FromLong(r == 0);
}

static PyObject *nx_log(PyObject *self, PyObject *msg)
{
    const char *p;
    Py_ssize_t n;
    int64_t r;
    if (str_or_bytes(msg, &p, &n) < 0 || request(NX_OP_LOG, "", 0, p, n, 0, NULL, &r) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef nanvix_methods[] = {
    {"snapshot", nx_snapshot, METH_NOARGS, "The snapshot point: every invocation starts here."},
    {"result", nx_result, METH_O, "The invocation's result (str or bytes)."},
    {"kv_get", nx_kv_get, METH_O, "The tenant's value at key (bytes), or None."},
    {"kv_put", (PyCFunction)(void (*)(void))nx_kv_put, METH_FASTCALL, "kv_put(key, value)"},
    {"kv_add", (PyCFunction)(void (*)(void))nx_kv_add, METH_FASTCALL, "kv_add(key, delta=1): the new value"},
    {"kv_delete", nx_kv_delete, METH_O, "kv_delete(key): whether it was there"},
    {"log", nx_log, METH_O, "log(message): a line of the invocation's log"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef nanvix_module = {PyModuleDef_HEAD_INIT, "nanvix", NULL, -1, nanvix_methods};

static PyObject *init_nanvix(void)
{
    return PyModule_Create(&nanvix_module);
}

static void fail(PyConfig *c, PyStatus st)
{
    PyConfig_Clear(c);
    Py_ExitStatusException(st);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    /* UTF-8 mode: text files and the standard streams are UTF-8 whatever the locale, as on
     * MicroPython (musl's C locale would make them ASCII) */
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);
    PyConfig c;
    PyConfig_InitIsolatedConfig(&c);
    c.site_import = 0;
    c.write_bytecode = 0;
    c.buffered_stdio = 0;            /* print() reaches the log at once, as on MicroPython */
    c.install_signal_handlers = 0;
    c.pathconfig_warnings = 0;
    c.module_search_paths_set = 1;
    if (PyImport_AppendInittab("nanvix", init_nanvix) < 0)
        return 2;
    st = PyConfig_SetString(&c, &c.home, L"/.nanvix");
    if (PyStatus_Exception(st))
        fail(&c, st);
    st = PyConfig_SetString(&c, &c.program_name, L"/.nanvix/python3");
    if (PyStatus_Exception(st))
        fail(&c, st);
    st = PyWideStringList_Append(&c.module_search_paths, L"/.nanvix/python311.zip");
    if (PyStatus_Exception(st))
        fail(&c, st);
    st = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (PyStatus_Exception(st))
        Py_ExitStatusException(st);
    FILE *f = fopen("/.nanvix/boot.py", "r");
    if (!f) {
        perror("/.nanvix/boot.py");
        _exit(2);
    }
    /* An uncaught exception: its traceback is printed to stderr (the log) and the invocation
     * fails; sys.exit(n) exits with n. */
    int r = PyRun_SimpleFileExFlags(f, "boot.py", 1, NULL);
    _exit(r ? 1 : 0);
}
