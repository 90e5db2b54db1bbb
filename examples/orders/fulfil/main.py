"""Ship accepted orders."""


def handler(event, context):
    order = event["data"]
    print(f"shipping order {order['id']} (total {order['total']}) for {order.get('customer')}")
    print(f"correlation id: {event.get('correlationid')}")
    return {"shipped": order["id"]}
