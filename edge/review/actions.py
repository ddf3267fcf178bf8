"""What the review pages and the JSON API both do: find parts and their images, record dispositions.

Each function checks its input and raises :class:`~edge.review.errors.HttpError` with a message that says
what is wrong; the page or route decides only how to answer (HTML, redirect or JSON).
"""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path

from edge.mqtt.payloads import ReviewPayload
from edge.review.context import ReviewContext
from edge.review.errors import HttpError
from edge.review.records import DISPOSITIONS, IMAGE_KINDS, Disposition, DispositionRecord, PartRecord

log = logging.getLogger(__name__)

DEFECT_CLASSES = ("scratch", "dent", "missing_component", "contamination", "misalignment", "crack", "other")
"""Offered by the part page; any short printable class is accepted."""
MAX_COMMENT = 2000
MAX_DEFECT_CLASS = 64


def find_part(ctx: ReviewContext, part_id: str) -> PartRecord:
    """The archived part ``part_id``.

    Raises:
        HttpError: 404 when it is not (or no longer) archived.

    """
    part = ctx.index.part(part_id)
    if part is None:
        raise HttpError(
            404, f"no archived part {part_id!r} (it may have been removed by retention)", where="path.part_id"
        )
    return part


def image_file(ctx: ReviewContext, part: PartRecord, kind: str) -> tuple[Path, str]:
    """``(path, content type)`` of one of ``part``'s images, found through the index only.

    The kind comes from a fixed list, the folder and file name from the index, and the final path must
    resolve inside the archive: nothing a request says reaches the file system.

    Raises:
        HttpError: 404 for an unknown kind, an image the part does not have, or a path outside the archive.

    """
    if kind not in IMAGE_KINDS:
        raise HttpError(
            404, f"no image kind {kind!r}: expected one of {', '.join(IMAGE_KINDS)}", where="path.kind"
        )
    name = part.files.get(kind)
    if name is None or part.dir is None:
        raise HttpError(404, f"part {part.part_id!r} has no {kind} image", where="path.kind")
    root = ctx.archive_root.resolve()
    path = (root / part.dir / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        log.warning(
            "review: refused image path %s of part %s (outside the archive or missing)", path, part.part_id
        )
        raise HttpError(404, f"the {kind} image of part {part.part_id!r} is missing from the archive")
    return path, mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def record_disposition(
    ctx: ReviewContext,
    part: PartRecord,
    kind: str,
    user: str,
    *,
    defect_class: str | None = None,
    comment: str = "",
) -> DispositionRecord:
    """Check and store a disposition of ``part`` by ``user``, then hand every pending one to MQTT.

    Returns:
        The stored disposition, with whether it reached the MQTT outbox.

    Raises:
        HttpError: 400 naming the field that is wrong.

    """
    if kind not in DISPOSITIONS:
        raise HttpError(
            400, f"disposition must be one of {', '.join(DISPOSITIONS)}", where="body.disposition"
        )
    defect_class = (defect_class or "").strip() or None
    comment = comment.strip()
    if kind == "confirm_defect" and defect_class is None:
        raise HttpError(400, "confirming a defect needs a defect class", where="body.defect_class")
    if kind == "false_alarm":
        defect_class = None
    if defect_class is not None and (len(defect_class) > MAX_DEFECT_CLASS or not defect_class.isprintable()):
        raise HttpError(
            400, f"defect class: at most {MAX_DEFECT_CLASS} printable characters", where="body.defect_class"
        )
    if len(comment) > MAX_COMMENT:
        raise HttpError(400, f"comment: at most {MAX_COMMENT} characters", where="body.comment")
    disposition: Disposition = "confirm_defect" if kind == "confirm_defect" else "false_alarm"
    stored = ctx.index.add_disposition(
        part.part_id, disposition, user, defect_class=defect_class, comment=comment
    )
    log.info("review: %s marked %s %s", user, part.part_id, kind)
    publish_pending(ctx)
    return next((d for d in ctx.index.dispositions(part.part_id) if d.id == stored.id), stored)


def publish_pending(ctx: ReviewContext) -> None:
    """Hand every not-yet-published disposition to MQTT, oldest first (the outbox makes them durable)."""
    if ctx.publish is None:
        return
    for record in ctx.index.unpublished():
        payload = ReviewPayload(
            part_id=record.part_id,
            disposition=record.disposition,  # type: ignore[arg-type]
            user=record.user,
            defect_class=record.defect_class,
            comment=record.comment,
            timestamp=record.at,
        )
        try:
            ctx.publish(payload)
        except Exception as exc:  # outbox full, broker settings gone: stored, retried with the next one
            log.error("review: disposition %d of %s not published: %s", record.id, record.part_id, exc)
            ctx.index.mark_published(record.id, f"{type(exc).__name__}: {exc}")
            return
        ctx.index.mark_published(record.id)
