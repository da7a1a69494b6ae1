"""The system VM: one long-lived process per tenant serving its user VMs' channels against the
tenant's persistent state. server.py is the process, store.py the state it owns, client.py the
control plane's handle on it."""
