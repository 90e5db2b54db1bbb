import time


def handler(event, context):
    kind = (event.get("data") or {}).get("kind", "ok")
    if kind == "fail":
        raise RuntimeError("this event fails on purpose")
    if kind == "slow":
        time.sleep(0.2)
    print(f"handled {event['id']}")
    return {"ok": True}
