// A kv counter: adds 1 to the tenant's key (the input, default "counter") in its system VM's
// durable store, atomically, and returns the new value.
function handle(data) {
    return String(nanvix.kv_add(data || "counter", 1));
}
