"""The stepped system VM: the real server (nanvix.impl.sysvm.server), serving only when told.

Run as `python -m nanvix.refine.sysvm` by the stepped runtime. It does not serve rings in its loop
(auto = False); the harness asks it to take one request, or to complete the oldest one it holds,
on a named channel: the two halves of the server's own `serve`, apart, so each is one spec
operation. `--loop` serves by the real loop instead (the harness checks it at quiet points).
`--plant NAME` runs it with a planted bug (nanvix.refine.plants).
"""
import sys

from nanvix.impl.sysvm.server import Server, main


class SteppedServer(Server):
    auto = False

    def command(self, req, fds):
        op = req.get("op")
        if op not in ("take", "complete"):
            return super().command(req, fds)
        self.sync()
        ch = self.channels.get(req["slot"])
        if ch is None:
            return {"ok": False, "error": "no active channel in slot %r" % req["slot"]}
        was_broken = ch.ring.broken
        if op == "take":
            r = self.take(ch)
            if r is not None:
                ch.in_service.append(r)
            return {"ok": True, "taken": r is not None, "broken": ch.ring.broken,
                    "broke": ch.ring.broken and not was_broken,
                    "pending": 0 if ch.ring.broken else ch.ring.pending(),
                    "user_data": r.user_data if r is not None else None,
                    "error": r.error if r is not None else 0}
        if was_broken or not ch.in_service:
            return {"ok": True, "completed": False, "broken": was_broken}
        r = ch.in_service.pop(0)
        res, notify = self.answer(ch, r)
        if notify:
            self.wake(ch)
        return {"ok": True, "completed": True, "user_data": r.user_data, "result": res}


def _main(argv):
    plant = None
    loop = "--loop" in argv   # serve by the real loop (auto); take/complete commands still answer
    argv = [a for a in argv if a != "--loop"]
    if "--plant" in argv:
        i = argv.index("--plant")
        plant = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    server_class = SteppedServer
    if plant:
        from nanvix.refine.plants import server_class as planted
        server_class = planted(plant)
    if loop:
        server_class = type("Loop" + server_class.__name__, (server_class,), {"auto": True})
    main(argv, server_class)


if __name__ == "__main__":
    _main(sys.argv[1:])
