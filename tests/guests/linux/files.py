# Python's own file API on the tenant's tree: write, append, read, list, mkdir, rename, stat,
# remove; returns what it saw.
import json
import os


def handle(data):
    name = data.decode() or "py"
    os.mkdir(name)
    with open(name + "/a.txt", "w") as f:
        f.write("hello\n")
    with open(name + "/a.txt", "a") as f:
        f.write("world\n")
    os.rename(name + "/a.txt", name + "/b.txt")
    with open(name + "/b.txt") as f:
        text = f.read()
    listing = sorted(os.listdir(name))
    size = os.stat(name + "/b.txt")[6]
    os.remove(name + "/b.txt")
    os.rmdir(name)
    try:
        open("missing.txt")
        missing = "found"
    except OSError as e:
        missing = e.errno
    return json.dumps({"text": text, "listing": listing, "size": size, "missing": missing,
                       "gone": name not in os.listdir(".")})
