"""The user VM's ABI: nanvix_abi.h is the one layout header; abi.pyx reads its values for Python."""
from nanvix.impl.abi.abi import *  # noqa: F401,F403
