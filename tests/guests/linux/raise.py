def handle(data):
    raise ValueError("bad input: %r" % data)
