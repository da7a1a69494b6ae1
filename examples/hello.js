// The smallest JavaScript function.
function handle(data) {
    return "hello";
}
