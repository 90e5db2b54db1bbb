"""Validate a new order and announce the verdict on the `orders` topic."""

import logging

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


def handler(event, context):
    order = event.get("data") or {}
    problems = []
    if not order.get("id"):
        problems.append("missing id")
    items = order.get("items") or []
    if not items:
        problems.append("no items")
    total = sum(item.get("price", 0) * item.get("quantity", 1) for item in items)
    if total <= 0:
        problems.append("total must be positive")

    if problems:
        logger.info("order %s rejected: %s", order.get("id"), ", ".join(problems))
        context.emit("orders", "order.rejected", {"id": order.get("id"), "problems": problems})
        return {"accepted": False, "problems": problems}

    logger.info("order %s accepted, total %.2f", order["id"], total)
    context.emit(
        "orders",
        "order.accepted",
        {"id": order["id"], "total": round(total, 2), "customer": order.get("customer")},
        subject=str(order["id"]),
    )
    return {"accepted": True, "total": round(total, 2)}
