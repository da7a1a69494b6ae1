// Word count over a file of the tenant (the input, default notes.txt), read with QuickJS's own
// file API (the std module): the path is relative to the tenant's tree, which the system VM serves.
function handle(data) {
    const path = data || "notes.txt";
    const f = std.open(path, "r");
    if (f === null)
        throw new Error(path + ": cannot open it");
    const text = f.readAsString();
    const bytes = f.tell();
    f.close();
    const words = text.split(/\s+/).filter((w) => w.length > 0);
    return JSON.stringify({path: path, lines: (text.match(/\n/g) || []).length, words: words.length, bytes: bytes});
}
