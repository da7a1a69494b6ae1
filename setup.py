"""Build nanvix: the Cython extensions of the host side and the guest microkernel library.

The top-level folders of the design card install as one import package, ``nanvix``: ``nanvix``
itself (the public Python API, folder nanvix/), ``nanvix.spec``, ``nanvix.proofs``,
``nanvix.model``, ``nanvix.impl`` and ``nanvix.refine`` (tests/ is not installed).
"""
import os
import runpy

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from Cython.Build import cythonize

HERE = os.path.dirname(os.path.abspath(__file__))

PACKAGES = {
    "nanvix": "nanvix",
    "nanvix.spec": "spec",
    "nanvix.spec.ops": "spec/ops",
    "nanvix.proofs": "proofs",
    "nanvix.proofs.mutants": "proofs/mutants",
    "nanvix.model": "model",
    "nanvix.impl": "impl",
    "nanvix.impl.abi": "impl/abi",
    "nanvix.impl.kvm": "impl/kvm",
    "nanvix.impl.channel": "impl/channel",
    "nanvix.impl.sched": "impl/sched",
    "nanvix.impl.sysvm": "impl/sysvm",
    "nanvix.impl.control": "impl/control",
    "nanvix.impl.serve": "impl/serve",
    "nanvix.impl.cli": "impl/cli",
    "nanvix.impl.guest": "impl/guest",
    "nanvix.impl.guest.linux": "impl/guest/linux",
    "nanvix.refine": "refine",
}


def cython_include():
    """Cython resolves `cimport nanvix.impl.kvm.kvm` (and each module's own .pxd) through the
    package path, but the source folders are named after the design card (impl/, not
    nanvix/impl/): give Cython a view of the package layout made of symlinks."""
    inc = os.path.join(HERE, "build", "cython-include")
    pkg = os.path.join(inc, "nanvix")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.pxd"), "a").close()
    for name in ("impl", "refine"):
        link = os.path.join(pkg, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(HERE, name), link)
    return inc


def ext(name, pyx):
    return Extension(
        "nanvix." + name, sources=[pyx],
        include_dirs=["impl/abi", "impl/kvm"],
        extra_compile_args=["-O2", "-Wno-unused-function"],
    )


class BuildExt(build_ext):
    """Cythonize the host side, then build the guest microkernel library (freestanding gcc)."""

    def run(self):
        super().run()
        guest = runpy.run_path(os.path.join(HERE, "impl", "guest", "build.py"))
        lib = guest["build_runtime"]()
        print("nanvix: guest microkernel library at", lib)


EXTENSIONS = [
    ext("impl.abi.abi", "impl/abi/abi.pyx"),
    ext("impl.kvm.kvm", "impl/kvm/kvm.pyx"),
    ext("impl.channel.ring", "impl/channel/ring.pyx"),
    ext("impl.channel.arena", "impl/channel/arena.pyx"),
    ext("impl.sched.sched", "impl/sched/sched.pyx"),
    ext("refine.cplants", "refine/cplants.pyx"),
]

setup(
    name="nanvix",
    version="0.2.0",
    description="Nanvix on KVM: per-invocation user VMs, per-tenant system VMs, and a formal model",
    python_requires=">=3.11",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"nanvix.impl.abi": ["*.h", "*.pxd"], "nanvix.impl.kvm": ["*.h", "*.pxd"],
                  "nanvix.impl.channel": ["*.pxd"], "nanvix.impl.sched": ["*.pxd"],
                  "nanvix.impl.guest": ["*.c", "*.h", "*.S", "*.ld"],
                  "nanvix.impl.guest.linux": ["*.c", "*.h", "*.S", "runtimes/*.c", "runtimes/micropython/*.py",
                                              "runtimes/micropython/variant/*",
                                              "runtimes/micropython/modules/nanvix/*",
                                              "runtimes/cpython/*"], "nanvix.refine": ["*.c", "*.pxd"]},
    ext_modules=cythonize(EXTENSIONS, include_path=[cython_include()],
                          compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
    # the daemon's front door (uvicorn with uvloop and httptools, a bare ASGI app; see impl/serve):
    # uvicorn's httptools protocol is subclassed, so its minor version is pinned
    install_requires=["z3-solver>=4.12", "networkx>=3.0", "uvicorn>=0.55,<0.56", "uvloop>=0.21",
                      "httptools>=0.6", "pyseccomp==0.1.2", "numpy>=1.26,<3", "matplotlib>=3.8,<4"],
    extras_require={"test": ["pytest>=7", "hypothesis>=6.80"]},
    entry_points={"console_scripts": ["nanvix = nanvix.cli:main"]},
)
