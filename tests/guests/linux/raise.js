function handle(data) {
    throw new TypeError("bad input: " + data);
}
