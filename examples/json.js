// JSON in, JSON out: {"numbers": [...]} -> their count, sum, mean and the largest; a greeting
// when there is a "name".
function handle(data) {
    const req = JSON.parse(data || "{}");
    const nums = req.numbers || [];
    const out = {count: nums.length, sum: nums.reduce((a, b) => a + b, 0)};
    if (nums.length) {
        out.mean = out.sum / nums.length;
        out.max = Math.max(...nums);
    }
    if ("name" in req)
        out.greeting = "hello, " + req.name;
    return JSON.stringify(out);
}
