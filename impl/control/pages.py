"""The host's pages: the 2 MiB pages a host hands to user VMs, as channel pages (shared with the
tenant's system VM) and as the memory a guest grows into.

A channel page is a slot of its tenant's channel arena (nanvix.impl.channel.arena): it belongs to
that tenant for good, and only that tenant's system VM maps the arena. A page a guest grows into
is a slice of this host's RAM arena, one memfd no other process ever sees, so a freed page may go
to any tenant, after it was scrubbed. Either way a page is a view of one mapping: no descriptor
and no mapping per page. Ownership is explicit and exclusive; a page is scrubbed when it is
freed; a page still mapped anywhere cannot be freed. These are the spec's "pages": owner, which
VMs map it, scrubbed.
"""
import threading

from nanvix.impl.abi import ABI
from nanvix.impl.errors import OutOfPages, PageError
from nanvix.impl.kvm import Memory, memfd

PAGE_SIZE = ABI["PAGE_2M"]


class Page:
    __slots__ = ("index", "mem", "kind", "owner", "tenant", "mapped_by")

    def __init__(self, index, mem, kind, tenant=None):
        self.index = index
        self.mem = mem
        self.kind = kind           # "channel" (a slot of a tenant's arena) or "ram"
        self.owner = None          # None (free), ("uvm", id) or ("channel", id)
        self.tenant = tenant       # a channel page's tenant is fixed; a RAM page's is its owner's
        self.mapped_by = set()     # ("uvm", id) / ("sysvm", tenant)

    def state(self):
        """As observed: `scrubbed` reads the page itself (all zero), not a flag we set."""
        return {"index": self.index, "owner": self.owner, "tenant": self.tenant,
                "mapped_by": sorted(self.mapped_by), "scrubbed": self.mem.is_zero()}


class PagePool:
    def __init__(self, max_pages):
        self.max_pages = max_pages
        self.pages = []
        self.free = []           # scrubbed RAM pages
        self.lock = threading.Lock()
        self.ram_fd = memfd("nanvix-ram", max_pages * PAGE_SIZE)
        self.ram = Memory(max_pages * PAGE_SIZE, self.ram_fd, True)

    def _new(self, mem_of, kind, tenant):
        if len(self.pages) >= self.max_pages:
            raise OutOfPages("all %d host pages are in use" % self.max_pages)
        index = len(self.pages)
        page = Page(index, mem_of(index), kind, tenant)
        self.pages.append(page)
        return page

    def channel_page(self, tenant, arena, slot):
        """A new page object for slot `slot` of tenant's arena (it stays that slot's)."""
        with self.lock:
            return self._new(lambda i: arena.page(slot), "channel", tenant)

    def alloc(self, owner, tenant):
        """A scrubbed RAM page for a user VM to grow into."""
        with self.lock:
            page = self.free.pop() if self.free else self._new(
                lambda i: self.ram.view(i * PAGE_SIZE, PAGE_SIZE), "ram", None)
            page.owner = owner
            page.tenant = tenant
            return page

    def claim(self, page, owner):
        """A free channel page becomes owner's."""
        with self.lock:
            if page.owner is not None:
                raise PageError("page %d is already %s's" % (page.index, page.owner))
            page.owner = owner

    def map(self, page, vm):
        page.mapped_by.add(vm)

    def unmap(self, page, vm):
        page.mapped_by.discard(vm)

    def release(self, page):
        """Scrub the page and free it (a RAM page back to the pool, a channel page back to its
        slot). It must be mapped by no one."""
        with self.lock:
            if page.mapped_by:
                raise PageError("page %d is still mapped by %s" % (page.index, sorted(page.mapped_by)))
            if page.owner is None:
                raise PageError("page %d is already free" % page.index)
            self.scrub(page)
            page.owner = None
            if page.kind == "ram":
                page.tenant = None
                self.free.append(page)

    @staticmethod
    def scrub(page, keep=False):
        """Zero the page: its range of the memfd is punched out, so every mapping of it, in any
        process, reads zeros from now on. keep: zero in place only the 4 KiB pages in memory
        (the others read as zeros already), so a page reused at once is not faulted in again."""
        if keep:
            page.mem.zero_resident()
        else:
            page.mem.scrub()

    def in_use(self, tenant=None):
        return sum(1 for p in self.pages if p.owner is not None and (tenant is None or p.tenant == tenant))

    def state(self):
        with self.lock:
            return [p.state() for p in self.pages]

    def close(self):
        self.pages = []
        self.free = []
        self.ram.close()
        import os
        os.close(self.ram_fd)
