# MicroPython for nanvix user VMs: nothing frozen, no threads, sockets, terminal or libffi. Files
# are the unix port's (VfsPosix): open() and os.* become the Linux-ABI layer's system calls.
FROZEN_MANIFEST =

MICROPY_PY_BTREE = 0
MICROPY_PY_FFI = 0
MICROPY_PY_SOCKET = 0
MICROPY_PY_THREAD = 0
MICROPY_PY_TERMIOS = 0
MICROPY_PY_SSL = 0
MICROPY_USE_READLINE = 0

MICROPY_VFS_FAT = 0
MICROPY_VFS_LFS1 = 0
MICROPY_VFS_LFS2 = 0
