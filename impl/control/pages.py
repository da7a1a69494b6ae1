"""The host page pool: the 2 MiB pages a host hands to user VMs (memory they grow into) and to
channels (the ring page a user VM shares with its tenant's system VM).

Each page is its own memfd, so a page can be given to exactly one other process (a system VM)
without exposing any other page. Ownership is explicit and exclusive; a page is scrubbed when it is
freed, and a page that was shared with another process gets a brand-new memfd, so a descriptor kept
by that process can never reach what the page holds next. A page still mapped anywhere cannot be
freed. These are the spec's "pages": owner, which VMs map it, scrubbed.
"""
import os
import threading

from nanvix.impl.abi import ABI
from nanvix.impl.errors import OutOfPages, PageError
from nanvix.impl.kvm import Memory, memfd

PAGE_SIZE = ABI["PAGE_2M"]


class Page:
    __slots__ = ("index", "fd", "mem", "owner", "tenant", "mapped_by", "shared_out")

    def __init__(self, index):
        self.index = index
        self.fd = memfd("nanvix-page-%d" % index, PAGE_SIZE)
        self.mem = Memory(PAGE_SIZE, self.fd, True)
        self.owner = None          # None (free), ("uvm", id) or ("channel", id)
        self.tenant = None
        self.mapped_by = set()     # ("uvm", id) / ("sysvm", tenant)
        self.shared_out = False    # its fd went to another process

    def state(self):
        """As observed: `scrubbed` reads the page itself (all zero), not a flag we set."""
        return {"index": self.index, "owner": self.owner, "tenant": self.tenant,
                "mapped_by": sorted(self.mapped_by), "scrubbed": self.mem.is_zero()}


class PagePool:
    def __init__(self, max_pages):
        self.max_pages = max_pages
        self.pages = []
        self.free = []
        self.lock = threading.Lock()

    def alloc(self, owner, tenant):
        with self.lock:
            if self.free:
                page = self.free.pop()
            elif len(self.pages) < self.max_pages:
                page = Page(len(self.pages))
                self.pages.append(page)
            else:
                raise OutOfPages("all %d host pages are in use" % self.max_pages)
            page.owner = owner
            page.tenant = tenant
            return page

    def map(self, page, vm):
        page.mapped_by.add(vm)

    def unmap(self, page, vm):
        page.mapped_by.discard(vm)

    def release(self, page):
        """Scrub the page and return it to the pool. It must be mapped by no one."""
        with self.lock:
            if page.mapped_by:
                raise PageError("page %d is still mapped by %s" % (page.index, sorted(page.mapped_by)))
            if page.owner is None:
                raise PageError("page %d is already free" % page.index)
            self.scrub(page)
            page.owner = None
            page.tenant = None
            self.free.append(page)

    @staticmethod
    def scrub(page):
        """Zero the page; one that was shared with another process also gets a brand-new memfd,
        so a descriptor or mapping kept there can never reach what the page holds next."""
        page.mem.scrub()  # also what a mapping left behind in another process now sees
        if page.shared_out:
            page.mem.close()
            os.close(page.fd)
            page.fd = memfd("nanvix-page-%d" % page.index, PAGE_SIZE)
            page.mem = Memory(PAGE_SIZE, page.fd, True)
            page.shared_out = False

    def in_use(self, tenant=None):
        return sum(1 for p in self.pages if p.owner is not None and (tenant is None or p.tenant == tenant))

    def state(self):
        with self.lock:  # release() may be swapping a page's memory on the reaper thread
            return [p.state() for p in self.pages]

    def close(self):
        for p in self.pages:
            p.mem.close()
            os.close(p.fd)
        self.pages = []
        self.free = []
