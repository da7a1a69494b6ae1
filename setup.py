"""Build nanvix: the Cython extensions of the host side and the guest microkernel library.

The five top-level folders of the design card install as one import package, ``nanvix``:
``nanvix.spec``, ``nanvix.proofs``, ``nanvix.model``, ``nanvix.impl`` (and ``nanvix.tests`` is not
installed). ``nanvix`` itself is a namespace package, so no sixth folder is needed.
"""
import os
import runpy

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from Cython.Build import cythonize

HERE = os.path.dirname(os.path.abspath(__file__))

PACKAGES = {
    "nanvix.spec": "spec",
    "nanvix.proofs": "proofs",
    "nanvix.proofs.mutants": "proofs/mutants",
    "nanvix.model": "model",
    "nanvix.impl": "impl",
    "nanvix.impl.guest": "impl/guest",
}


def cython_include():
    """Cython resolves `cimport nanvix.impl.kvm` (and each module's own .pxd) through the package
    path, but the source folders are named after the design card (impl/, not nanvix/impl/): give
    Cython a view of the package layout made of one symlink."""
    inc = os.path.join(HERE, "build", "cython-include")
    pkg = os.path.join(inc, "nanvix")
    os.makedirs(pkg, exist_ok=True)
    for marker in ("__init__.pxd",):
        open(os.path.join(pkg, marker), "a").close()
    link = os.path.join(pkg, "impl")
    if not os.path.islink(link):
        os.symlink(os.path.join(HERE, "impl"), link)
    return inc


def ext(name, *sources):
    return Extension(
        "nanvix.impl." + name,
        sources=["impl/%s.pyx" % name, *sources],
        include_dirs=["impl", "impl/guest"],
        extra_compile_args=["-O2", "-Wno-unused-function"],
    )


class BuildExt(build_ext):
    """Cythonize the host side, then build the guest microkernel library (freestanding gcc)."""

    def run(self):
        super().run()
        guest = runpy.run_path(os.path.join(HERE, "impl", "guest", "build.py"))
        lib = guest["build_runtime"]()
        print("nanvix: guest microkernel library at", lib)


setup(
    name="nanvix",
    version="0.1.0",
    description="Nanvix on KVM: per-invocation user VMs, per-tenant system VMs, and a formal model",
    python_requires=">=3.11",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"nanvix.impl": ["*.pxd", "*.h"], "nanvix.impl.guest": ["*.c", "*.h", "*.S", "*.ld"]},
    ext_modules=cythonize([ext("kvm"), ext("ring"), ext("sched")], include_path=[cython_include()],
                          compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
    install_requires=["z3-solver>=4.12", "networkx>=3.0"],
    extras_require={"test": ["pytest>=7", "hypothesis>=6.80"]},
    entry_points={"console_scripts": ["nanvix = nanvix.impl.cli:main"]},
)
