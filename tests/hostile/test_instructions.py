"""Privileged and faulting instructions: the guest runs at CPL3 on page tables, a GDT and a TSS
it cannot write, with no IDT; every privileged instruction, every fault and every access outside
its memory ends the invocation as crashed (a triple fault, or an exit the VMM does not serve),
on that core only, and nothing it wrote survives into the tenant's next user VM."""
import pytest

from conftest import run_all

PRIVILEGED = ["hlt", "cli", "sti", "wrmsr", "rdmsr", "lgdt", "lidt", "ltr", "movcr3", "movcr0", "invlpg",
              "wbinvd", "rdpmc", "xsetbv", "swapgs", "iretq", "ljmp0", "movss"]
FAULTING = ["int3", "int80", "ud2", "div0", "syscall", "sysret", "sysenter"]


@pytest.mark.parametrize("insn", PRIVILEGED)
def test_privileged_instructions(suite, insn):
    """Each needs CPL0 (or IOPL 3, or a descriptor the guest does not have): #GP with no
    handler, so a triple fault; crashed, with nothing of a result."""
    att = suite.attacker("insn")
    rep = att.run("insn " + insn)
    assert rep["status"] == "crashed" and rep["detail"].startswith("triple fault"), rep
    assert rep["result"] == ""
    suite.contained(att)


@pytest.mark.parametrize("insn", FAULTING)
def test_faulting_instructions(suite, insn):
    """A breakpoint, a software interrupt, an invalid opcode, a divide by zero, and the fast
    system-call instructions (no IDT, no LSTAR, EFER.SCE clear): crashed."""
    att = suite.attacker("insn")
    rep = att.run("insn " + insn)
    assert rep["status"] == "crashed" and rep["detail"].startswith("triple fault"), rep
    suite.contained(att)


@pytest.mark.parametrize("what", ["ptwrite", "gdtwrite"])
def test_writes_to_page_tables_and_gdt(suite, what):
    """The PML4 and the GDT are mapped supervisor-only: a write from CPL3 faults (and had it
    worked, the next invocation would show it: it runs, pristine)."""
    att = suite.attacker("insn")
    rep = att.run("insn " + what)
    assert rep["status"] == "crashed", rep
    assert att.ok("ping") == "clock=1 get=-2"
    suite.contained(att)


# page 0; the page tables; the GDT; the TSS; a hole with no memory slot (the hot-add window
# holds nothing until a GROW); past the last page-table entry; non-canonical; the upper half
OUTSIDE = [0x0, 0x8, 0x1000, 0x6000, 0x7000, 0x4000_0000, 0x3f00_0000, 0x8000_0000_0000,
           0xffff_ffff_8000_0000]


@pytest.mark.parametrize("addr", OUTSIDE, ids=hex)
@pytest.mark.parametrize("how", ["peek", "poke", "jump"])
def test_access_outside_its_memory(suite, addr, how):
    """Read, write or execute there: a page fault (a triple fault), or an exit the VMM does not
    serve (an access to a hole, or code KVM cannot run from it): crashed, with the reason."""
    att = suite.attacker("insn")
    rep = att.run("%s %x" % (how, addr))
    assert rep["status"] == "crashed", rep
    assert rep["detail"].split(" ")[0] in ("triple", "access", "exit"), rep
    suite.contained(att)


@pytest.mark.parametrize("addr", [0x10000, 0x200000], ids=["info-block", "channel-page"])
def test_executing_data(suite, addr):
    """Jumping into the info block or the channel page (data the guest can write): crashed
    (a zero page decodes to instructions that fault soon enough), never a host error."""
    att = suite.attacker("insn")
    rep = att.run("jump %x" % addr)
    assert rep["status"] == "crashed", rep
    suite.contained(att)


def test_stack_overflow(suite):
    att = suite.attacker("insn")
    rep = att.run("recurse", timeout_ms=5000)
    assert rep["status"] in ("crashed", "timeout"), rep
    suite.contained(att)


def test_a_fault_in_a_second_thread(suite):
    """A thread other than the first faults: the whole user VM crashes (it has no way to
    survive it), nothing hangs on the thread that joined it."""
    att = suite.attacker("insn")
    rep = att.run("threadfault")
    assert rep["status"] == "crashed", rep
    suite.contained(att)


def test_its_own_code_overwritten_does_not_outlive_the_invocation(suite):
    """The guest overwrites its own nx_main with ud2 and ends normally: its user VM is recycled
    for the next invocation (reset to the snapshot), which runs nx_main as it was built."""
    att = suite.attacker("insn-smash")
    smashed = set()
    for _ in range(12):
        rep = att.run("smash")
        assert rep["status"] == "ok" and rep["result"] == "smashed", rep
        smashed.add(rep["user_vm"])
        rep = att.run("ping")
        assert rep["status"] == "ok" and rep["result"] == "clock=1 get=-2", rep
    reused = [att.run("ping") for _ in range(8)]
    assert all(r["status"] == "ok" for r in reused)
    assert smashed & {r["user_vm"] for r in reused}, "no smashed user VM was reused: nothing was shown"
    suite.contained(att)


def test_faults_on_every_core_at_once(suite):
    """Twelve crashing guests at once (more than cores), beside the bystander: each crashes, the
    bystander's invocations are served, and the cores serve the next invocations."""
    att = suite.attacker("insn")
    calls = [(lambda i=i: att.run("insn " + (PRIVILEGED + FAULTING)[i])) for i in range(12)]
    calls += [lambda: suite.rt.invoke("bystander", "tests/guests/io.c", b"kvget secret") for _ in range(4)]
    reps = run_all(calls)
    assert all(r["status"] == "crashed" for r in reps[:12]), reps[:12]
    assert all(r["status"] == "ok" for r in reps[12:]), reps[12:]
    assert all(r["status"] == "ok" for r in run_all([lambda: att.run("ping") for _ in range(4)]))
    suite.contained(att)
