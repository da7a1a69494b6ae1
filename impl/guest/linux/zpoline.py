"""zpoline-style rewriting of foreign static binaries (placeholder until written)."""
from nanvix.impl.errors import InvalidArgument


def rewrite(elf, sites):
    raise InvalidArgument("%s: rewriting syscall instructions is not supported yet" % elf.path)
