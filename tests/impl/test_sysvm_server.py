"""The system VM's server loop, in this process: control messages and doorbells in one batch."""
import json
import os
import socket

from nanvix.impl.abi import ABI
from nanvix.impl.channel import init_channel
from nanvix.impl.kvm import Memory, memfd
from nanvix.impl.sysvm.server import Server


def make_server(tmp_path):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return Server("t", str(tmp_path), theirs), ours


def attach(server, cid):
    fd = memfd("chan", ABI["CHANNEL_SIZE"])
    mem = Memory(ABI["CHANNEL_SIZE"], fd, True)
    init_channel(mem)
    doorbell = os.eventfd(0, os.EFD_NONBLOCK)
    notify = os.eventfd(0, os.EFD_NONBLOCK)
    keep = os.dup(doorbell)  # the guest's side of the doorbell (KVM's ioeventfd in a host)
    reply = server.command({"op": "attach", "chan": cid, "uvm": cid}, [fd, doorbell, notify])
    assert reply["ok"]
    return mem, keep


def test_a_doorbell_of_a_channel_detached_in_the_same_batch_is_ignored(tmp_path):
    """The stale-eventfd crash: a detach closes a doorbell whose event is still in the batch
    epoll returned. The loop must skip it (it used to read the closed fd: EBADF killed it)."""
    server, ctl = make_server(tmp_path)
    mems = [attach(server, cid) for cid in (1, 2)]
    ctl.send(json.dumps({"op": "detach", "chan": 1}).encode())   # ready first
    for _, bell in mems:
        os.eventfd_write(bell, 1)                                  # then both doorbells
    events = server.epoll.poll(0)
    assert len(events) == 3
    server.dispatch(events)              # no exception: the stale event was skipped
    assert json.loads(ctl.recv(1 << 16))["ok"]
    assert list(server.channels) == [2]
    server.dispatch(server.epoll.poll(0))
    ctl.send(json.dumps({"op": "ping"}).encode())
    server.dispatch(server.epoll.poll(0))
    assert json.loads(ctl.recv(1 << 16))["ok"]   # still serving
