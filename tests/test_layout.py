"""The house rules of the layout: the implementation knows nothing of its checker, and every
Cython extension has its typed interface."""
import glob
import os
import re

from conftest import ROOT


def impl_sources():
    for pattern in ("impl/**/*.py", "impl/**/*.pyx", "impl/**/*.pxd"):
        yield from glob.glob(os.path.join(ROOT, pattern), recursive=True)


def test_the_implementation_never_imports_the_spec_the_proofs_or_the_harness():
    bad = re.compile(r"^\s*(from|import)\s+nanvix\.(spec|proofs|refine|model)\b", re.M)
    offenders = [p for p in impl_sources() if bad.search(open(p).read())]
    assert offenders == []


def test_no_production_code_reads_a_planted_bug():
    offenders = [p for p in impl_sources() if re.search(r"PLANT|\bplant_\w+|environ.get\(\"NANVIX_(PLANT|TEST)", open(p).read())]
    assert offenders == []


def test_every_extension_module_has_a_pxd():
    for pyx in glob.glob(os.path.join(ROOT, "impl", "*", "*.pyx")):
        if os.path.basename(pyx) == "abi.pyx":
            continue  # abi.pxd is the header's declarations; abi.pyx only reads values from it
        assert os.path.exists(pyx[:-4] + ".pxd"), pyx


def test_the_check_command_offers_every_plant():
    from nanvix.refine import plants
    import nanvix.cli as cli
    ap = cli.build_parser()
    check = ap._subparsers._group_actions[0].choices["check"]
    choices = next(a.choices for a in check._actions if a.dest == "plant")
    assert sorted(choices) == sorted(plants.NAMES)


def test_the_commands_that_run_guests_put_the_host_beside_the_system_vms_unless_told_not_to():
    """Fair cores are the CLI's default (a Runtime alone does not move its process: fair_cores)."""
    import nanvix.cli as cli
    ap = cli.build_parser()
    for argv in (["run", "f.c"], ["invoke", "f"], ["deploy", "f.c"], ["serve"], ["demo"], ["bench", "--fairness"]):
        assert ap.parse_args(argv).fair_cores is True, argv
        assert ap.parse_args(argv + ["--no-fair-cores"]).fair_cores is False, argv
