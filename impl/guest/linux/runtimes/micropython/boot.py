# The Python driver, run by MicroPython (and by CPython, runtimes/cpython) in the user VM: load
# the function (handler.py, built into the image), stop at the snapshot point, then per
# invocation call handle(input) and hand back what it returns. An exception's traceback goes to
# stderr, i.e. the invocation's log.
import sys
import nanvix

_scope = {"__name__": "handler"}
with open("/.nanvix/handler.py") as _f:
    exec(compile(_f.read(), "handler.py", "exec"), _scope)
handle = _scope.get("handle")
if not callable(handle):
    sys.stderr.write("handler.py defines no function handle(data)\n")
    sys.exit(2)
del _f

nanvix.snapshot()   # --- every invocation starts here ---
# The snapshot holds one state of the random generator: seed it afresh (getrandom, RDRAND in the
# microkernel) or every invocation would repeat one sequence. MicroPython's random is built in
# (never in sys.modules); CPython's is reseeded only if the function imported it.
if "random" in sys.modules or sys.implementation.name == "micropython":
    import random
    random.seed()
_result = handle(sys.stdin.buffer.read())
if _result is None:
    _result = b""
elif not isinstance(_result, (str, bytes)):
    raise TypeError("handle() must return str or bytes, not %s" % type(_result).__name__)
nanvix.result(_result)
