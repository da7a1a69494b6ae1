"""Pools of what a start would otherwise wait for, made ahead of time off the invocation path."""
import threading

from nanvix.impl.threads import spawn


class VmPool:
    """Empty VMs created ahead of time (KVM_CREATE_VM is most of a cold start). A pooled VM has no
    memory and no vCPU yet; it is handed out once and never reused."""

    def __init__(self, kvm, size=4):
        self.kvm = kvm
        self.size = size
        self.ready = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopped = False
        self.thread = None
        if size > 0:
            self.thread = spawn("nanvix-vm-pool", self._fill)

    def _fill(self):
        while not self.stopped:
            with self.lock:
                need = self.size - len(self.ready)
            for _ in range(need):
                vm = self.kvm.create_vm()
                with self.lock:
                    self.ready.append(vm)
            self.wake.wait(0.5)
            self.wake.clear()

    def take(self):
        with self.lock:
            vm = self.ready.pop() if self.ready else None
        self.wake.set()
        return vm if vm is not None else self.kvm.create_vm()

    def close(self):
        self.stopped = True
        self.wake.set()
        if self.thread:
            self.thread.join(2)
        with self.lock:
            for vm in self.ready:
                vm.close()
            self.ready = []
