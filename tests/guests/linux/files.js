// QuickJS's own file API (std and os) on the tenant's tree.
function handle(data) {
    const name = data || "js";
    os.mkdir(name);
    let f = std.open(name + "/a.txt", "w");
    f.puts("hello\n");
    f.close();
    f = std.open(name + "/a.txt", "a");
    f.puts("world\n");
    f.close();
    os.rename(name + "/a.txt", name + "/b.txt");
    const text = std.loadFile(name + "/b.txt");
    const [listing, err] = os.readdir(name);
    const [st, serr] = os.stat(name + "/b.txt");
    os.remove(name + "/b.txt");
    os.remove(name);
    return JSON.stringify({text: text, listing: listing.filter((n) => n[0] != ".").sort(), size: st.size,
                           missing: std.open("missing.txt", "r") === null});
}
