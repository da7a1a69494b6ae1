# A kv counter: adds 1 to the tenant's key (the input, default "counter") in its system VM's
# durable store, atomically, and returns the new value.
import nanvix


def handle(data):
    return str(nanvix.kv_add(data.decode() or "counter", 1))
