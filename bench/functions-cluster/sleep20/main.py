import time


def handler(event, context):
    time.sleep(0.02)  # an I/O-bound handler: waiting on a call that takes 20 ms
    return None
