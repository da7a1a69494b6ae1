# The smallest Python function.
def handle(data):
    return "hello"
