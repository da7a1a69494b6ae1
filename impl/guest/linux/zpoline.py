"""zpoline-style rewriting of static binaries built elsewhere (with their own libc).

Each `syscall` (0f 05) becomes `call *%rax` (ff d0), two bytes for two bytes: the call jumps to
the address held in rax, the system call's number (0..511), where the host maps page 0 as a
read-only sled of nops ending in a jump through the syscall vector. So the program reaches the
Linux-ABI layer exactly as a patched musl does, with its return address on the stack.

That push is the hazard: it writes the 8 bytes below the stack pointer, which code compiled with a
red zone (the SysV ABI's 128 bytes below rsp that a leaf function may use without moving rsp) may
hold live data in. A site is rewritten only if the function around it provably keeps nothing
below rsp: it has no memory operand below %rsp, and any negative %rbp offset lies within the
room it reserved (sub from rsp, pushes) after setting up its frame. A binary without a symbol
table (stripped), or with any site that fails the check, is refused with the reason: rebuild it
with `nanvix cc` (or -mno-red-zone). The sites come from objdump's disassembly of the binary's
executable segments; the check reads the same disassembly.
"""
import bisect
import re
import struct
import subprocess

from nanvix.impl.errors import InvalidArgument

SLED = 512                      # numbers below this reach the layer; the rest fault
SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
BELOW_RSP = re.compile(r"-0x[0-9a-f]+\(%rsp")
RBP_OFF = re.compile(r"-0x([0-9a-f]+)\(%rbp\)")  # (an index makes it an array: not judged)
SUB_RSP = re.compile(r"\tsub\s+\$0x([0-9a-f]+),%rsp")
INSN = re.compile(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{2} )+\s*\t(.*)$", re.M)


def page0(vector):
    """The 4 KiB the host maps at guest address 0 for a rewritten binary: nops, then
    `jmp *vector`, then int3 (a number past the sled faults)."""
    jmp = b"\xff\x24\x25" + struct.pack("<I", vector)
    return b"\x90" * SLED + jmp + b"\xcc" * (4096 - SLED - len(jmp))


def _functions(elf):
    """(start, end, name) of every function symbol, sorted; one without a size (hand-written
    assembly) runs to the next symbol."""
    d = elf.data
    shoff, = struct.unpack_from("<Q", d, 40)
    shentsize, shnum = struct.unpack_from("<HH", d, 58)
    out = []
    for i in range(shnum if shentsize == 64 else 0):
        _, kind, _, _, off, size, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", d, shoff + 64 * i)
        if kind != 2 or entsize != SYM.size:          # SHT_SYMTAB
            continue
        stroff = struct.unpack_from("<IIQQQQIIQQ", d, shoff + 64 * link)[4]
        for k in range(size // SYM.size):
            st_name, info, _, shndx, value, sz = SYM.unpack_from(d, off + k * SYM.size)
            if info & 0xF == 2 and shndx:             # STT_FUNC
                end = d.index(b"\0", stroff + st_name)
                out.append((value, value + sz, d[stroff + st_name:end].decode(errors="replace")))
    out = sorted(set(out))
    starts = sorted({f[0] for f in out})
    for i, (lo, hi, name) in enumerate(out):
        if hi == lo:
            k = bisect.bisect_right(starts, lo)
            out[i] = (lo, starts[k] if k < len(starts) else lo + 64, name)
    return out


def _disassembly(path, lo, hi):
    return subprocess.run(["objdump", "-d", "-w", "--start-address=%#x" % lo, "--stop-address=%#x" % hi, path],
                          capture_output=True, text=True, check=True).stdout


def red_zone_use(text):
    """Why a function's code may keep data below its stack pointer, or None."""
    insns = INSN.findall(text)
    for i in insns:
        if BELOW_RSP.search(i) and not i.startswith("nop"):
            return "it reads or writes below %%rsp (%s)" % i.strip()
    framed = reserved = 0
    for i in insns:
        if re.match(r"mov\s+%rsp,%rbp", i):
            framed, reserved = 1, 0
            continue
        if framed:
            m = SUB_RSP.search("\t" + i)
            if m:
                reserved += int(m.group(1), 16)
            elif i.startswith("push"):
                reserved += 8
            m = RBP_OFF.search(i)
            if m and int(m.group(1), 16) > reserved:
                return "it keeps data below %%rsp through its frame pointer (%s)" % i.strip()
    return None


def rewrite(elf, sites):
    """The binary's file bytes with every site rewritten, or InvalidArgument saying why not."""
    funcs = _functions(elf)
    if not funcs:
        raise InvalidArgument("%s holds %d `syscall` instructions and no symbol table (stripped): its "
                              "functions cannot be checked for red-zone use, so they are not rewritten; "
                              "build it with `nanvix cc`" % (elf.path, len(sites)))
    starts = [f[0] for f in funcs]
    data = bytearray(elf.data)
    checked = {}
    for site in sites:
        k = bisect.bisect_right(starts, site) - 1
        if k < 0 or not funcs[k][0] <= site < funcs[k][1]:
            raise InvalidArgument("%s: a `syscall` at %#x lies outside every known function: not rewritten"
                                  % (elf.path, site))
        lo, hi, name = funcs[k]
        if (lo, hi) not in checked:
            checked[(lo, hi)] = red_zone_use(_disassembly(elf.path, lo, hi))
        if checked[(lo, hi)]:
            raise InvalidArgument("%s: the `syscall` at %#x is in %s, and %s: a call there would overwrite "
                                  "it. Rebuild the program with `nanvix cc` (or with -mno-red-zone)"
                                  % (elf.path, site, name, checked[(lo, hi)]))
        for v, off, fs, _, flags in elf.loads:
            if v <= site < v + fs and flags & 1:
                at = off + site - v
                if data[at:at + 2] != b"\x0f\x05":
                    raise InvalidArgument("%s: no syscall instruction at %#x" % (elf.path, site))
                data[at:at + 2] = b"\xff\xd0"     # call *%rax
                break
        else:
            raise InvalidArgument("%s: a `syscall` at %#x outside the executable segments" % (elf.path, site))
    return bytes(data)
