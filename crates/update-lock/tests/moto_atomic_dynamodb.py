"""moto plugin: make DynamoDB item writes atomic, as real DynamoDB's are.

moto 5.2.1 evaluates a ConditionExpression and then stores the item without
holding any lock, while its server answers each request on its own thread.
Two racing conditional PutItems on one item can therefore both succeed (the
update-lock tests observed 2 winners in 30 rounds of 8 racers). Real
DynamoDB applies a conditional write atomically per item; a lock built on
it relies on exactly that.

This plugin serialises moto's DynamoDB item reads and writes with one
process-wide lock, so the emulator honours the atomicity contract that the
lock's correctness (and its contention test) depends on. It changes nothing
else. `handle` answers `ping` so a test can check the plugin is loaded.
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend

_LOCK = threading.RLock()
_PATCHED = [
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
]


def _serialised(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return wrapper


for _name in _PATCHED:
    _method = getattr(DynamoDBBackend, _name, None)
    if _method is not None:
        setattr(DynamoDBBackend, _name, _serialised(_method))


def handle(operation, body):
    if operation == "ping":
        return {"serialised": [n for n in _PATCHED if hasattr(DynamoDBBackend, n)]}
    raise ValueError(f"unknown operation {operation}")
