# JSON in, JSON out: {"numbers": [...]} -> their count, sum, mean and the largest; a greeting
# when there is a "name".
import json


def handle(data):
    req = json.loads(data or b"{}")
    nums = req.get("numbers", [])
    out = {"count": len(nums), "sum": sum(nums)}
    if nums:
        out["mean"] = sum(nums) / len(nums)
        out["max"] = max(nums)
    if "name" in req:
        out["greeting"] = "hello, %s" % req["name"]
    return json.dumps(out)
