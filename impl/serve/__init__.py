"""`nanvix serve`: the host daemon. One per home: it owns the embedded Host (the VMM, pools,
scheduler and every tenant's system VM) and answers an HTTP front door.

    credentials.py  tenants and their tokens (stored hashed), the admin token file, the home lock
    jail.py         builds of tenants' C source in a Landlock jail (they may read nothing of the host)
    protocol.py     the HTTP/1.1 connection (uvicorn + httptools) with limits on headers and slow clients
    app.py          the ASGI application: routes, authorisation, invocations off the event loop
    daemon.py       the process: lock, listen, serve, graceful shutdown
    client.py       the HTTP client the `nanvix` command uses (NANVIX_URL, NANVIX_TOKEN)
    floor.py        an HTTP server answering in-process: the front door's floor in `nanvix bench`
"""
