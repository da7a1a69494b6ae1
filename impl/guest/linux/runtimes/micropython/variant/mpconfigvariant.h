// MicroPython for nanvix user VMs: the unix port's full feature level, minus what a user VM has
// no use for (threads, sockets, terminals, foreign functions: see mpconfigvariant.mk).
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)

#include "variants/mpconfigvariant_common.h"
