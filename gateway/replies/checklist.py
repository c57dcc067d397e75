"""The documents a request asks for (upload="T4 slips, signed engagement
letter"), each ticked once a file the client sent says it answers it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gateway.core.models import PaymentRequest, SealedFile


@dataclass(frozen=True)
class Item:
    index: int
    label: str
    # Files the client sent for it so far: ticked from the first.
    files: int

    @property
    def received(self) -> bool:
        return self.files > 0


async def checklist(request: PaymentRequest) -> list[Item]:
    """The request's checklist as it stands (empty without upload=)."""
    labels = list(request.upload_items or ())
    if not labels:
        return []
    answered = Counter(await SealedFile.filter(request_id=request.id, reply_id__isnull=False,
                                               upload_item__isnull=False).values_list("upload_item", flat=True))
    return [Item(index, label, answered[index]) for index, label in enumerate(labels)]


def first_outstanding(items: list[Item]) -> int | None:
    """The line a reply's files answer unless the client says otherwise."""
    return next((item.index for item in items if not item.received), None)


def summary(items: list[Item]) -> str:
    """One line for staff: "T4 slips (received), engagement letter (waiting)"."""
    return ", ".join(f"{item.label} ({'received' if item.received else 'waiting'})" for item in items)
