# Word count over a file of the tenant (the input, default notes.txt), read with Python's own
# open(): the path is relative to the tenant's tree, which the system VM serves.
import json


def handle(data):
    path = data.decode() or "notes.txt"
    with open(path) as f:
        text = f.read()
    return json.dumps({"path": path, "lines": text.count("\n"), "words": len(text.split()),
                       "bytes": len(text.encode())})
