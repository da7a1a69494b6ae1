# A Python function: handle(data) gets the input as bytes and returns the result (str or bytes).
def handle(data):
    print("echo.py got", len(data), "bytes")   # print() goes to the invocation's log
    return data
