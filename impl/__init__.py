"""nanvix.impl: the KVM implementation (host VMM, scheduler, system VMs, control plane)."""
