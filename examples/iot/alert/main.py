"""Raise an alert for a sensor reading that is too hot.

The event is the MQTT message as a CloudEvent: ``subject`` is the MQTT topic
(``sensors/<site>/<device>/reading``) and ``data`` the reading the device sent.
"""

import logging

log = logging.getLogger("alert")


def handler(event, context):
    _, site, device, _ = event["subject"].split("/")
    reading = event["data"]
    message = f"{device} at {site} reads {reading['temperature']} {reading.get('unit', 'C')}"
    log.warning("ALERT: %s", message)
    return {"site": site, "device": device, "temperature": reading["temperature"]}
