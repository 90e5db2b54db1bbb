"""A shop's order pipeline declared in Python: `accept` checks each new order against its
model and emits `order.accepted`; `ship` reacts to accepted orders, one customer at a
time; `nightly` sums up on a schedule.

    triggerfish dev app.py       # a node, this project deployed, live on every save
    triggerfish deploy app.py    # to a running server
    pytest                       # tests/, without a server
"""

import logging

from pydantic import BaseModel, Field

from triggerfish import App

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

app = App()
app.topic("orders", retention="7d")


class Item(BaseModel):
    sku: str
    price: float = Field(gt=0)
    quantity: int = Field(default=1, ge=1)


class Order(BaseModel):
    id: str
    customer: str
    items: list[Item] = Field(min_length=1)


@app.on(
    "orders",
    pattern={"type": ["order.created"]},
    retry={"max_attempts": 3, "max_age": 3600},
    dead_letter="orders-failed",
    memory=128,
    timeout=10,
)
def accept(order: Order, context):
    """An order whose data does not fit `Order` is dead-lettered at once, with the
    validation errors; one that fits is announced with its total."""
    total = round(sum(item.price * item.quantity for item in order.items), 2)
    logger.info("order %s accepted, total %.2f", order.id, total)
    context.emit(
        "orders",
        "order.accepted",
        {"id": order.id, "customer": order.customer, "total": total},
        subject=order.id,
    )
    return {"accepted": order.id, "total": total}


@app.on(
    "orders",
    pattern={"type": ["order.accepted"]},
    ordering={"key": "data.customer"},
    retry={"max_attempts": 5, "backoff": 2},
    dead_letter="orders-failed",
)
def ship(event, context):
    """One customer's orders ship in the order they were accepted."""
    order = event["data"]
    logger.info("shipping order %s to %s", order["id"], order["customer"])
    return {"shipped": order["id"]}


@app.schedule("rate(1 day)")
def nightly(event, context):
    logger.info("nightly report")
    return {"report": "sent"}
