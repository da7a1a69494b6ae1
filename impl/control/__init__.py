"""The control plane: tenants, their system VMs, function images and snapshot templates, user VMs
and their channels, the page pool, invocations (runtime.py), and the public host API (host.py)."""
