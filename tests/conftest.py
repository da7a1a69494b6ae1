"""Shared fixtures for the implementation tests (tests/test_impl_*.py).

Every test that needs /dev/kvm uses the `kvm` marker or the `rt` fixture; both skip with a clear
reason where /dev/kvm is absent. NANVIX_HOME points at a per-session temporary directory so no test
touches the user's home; NANVIX_CACHE (the build cache) keeps its default.
"""
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GUESTS = os.path.join(HERE, "guests")
EXAMPLES = os.path.join(ROOT, "examples")


def _kvm_reason():
    if os.environ.get("NANVIX_TEST_NO_KVM"):
        return "NANVIX_TEST_NO_KVM is set: KVM tests disabled"
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm is absent: KVM tests need hardware (or nested) virtualisation"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not readable and writable by this user"
    return None


KVM_SKIP = _kvm_reason()


def pytest_collection_modifyitems(config, items):
    if KVM_SKIP is None:
        return
    skip = pytest.mark.skip(reason=KVM_SKIP)
    for item in items:
        if item.get_closest_marker("kvm") is not None:
            item.add_marker(skip)


def guest(name):
    """Path of a test function in tests/guests/."""
    return os.path.join(GUESTS, name)


def example(name):
    return os.path.join(EXAMPLES, name)


@pytest.fixture(scope="session", autouse=True)
def nanvix_home(tmp_path_factory):
    home = str(tmp_path_factory.mktemp("nanvix-home"))
    old = os.environ.get("NANVIX_HOME")
    os.environ["NANVIX_HOME"] = home
    yield home
    if old is None:
        os.environ.pop("NANVIX_HOME", None)
    else:
        os.environ["NANVIX_HOME"] = old


@pytest.fixture
def kvm():
    """Skip unless /dev/kvm is usable."""
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)


@pytest.fixture(scope="session")
def rt(nanvix_home):
    """One runtime for the implementation tests: 2 cores, automatic system VM restarts."""
    if KVM_SKIP:
        pytest.skip(KVM_SKIP)
    from nanvix.impl.control.runtime import Runtime

    r = Runtime(home=nanvix_home, cores=2, max_pages=512)
    yield r
    r.close()


@pytest.fixture
def invoke(rt):
    """invoke(tenant, path, input=b"", timeout_ms=10000) -> report dict."""

    def _invoke(tenant, path, data=b"", timeout_ms=10_000):
        if isinstance(data, str):
            data = data.encode()
        return rt.invoke(tenant, path, data, timeout_ms)

    return _invoke
