"""A message's attachments as the web serves them: one file's bytes behind its signed link, and
which files were never kept (over the size limit when the mail came, listed by name only)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.domain.errors import NotFound
from store.models import Attachment, Message, Ticket


@dataclass(frozen=True)
class AttachmentFile:
    filename: str
    content_type: str  # as the sender's mail declared it: never trusted to be what it says
    data: bytes | None  # None: too large to keep when the mail came
    ticket_number: int  # the ticket whose page lists it (for the viewer's language)


def read_attachment(sessions: sessionmaker[Session], attachment_id: int) -> AttachmentFile:
    """One attachment with its bytes, read in one transaction; NotFound when there is none."""
    with sessions() as session:
        row = session.execute(
            select(Attachment.filename, Attachment.content_type, Attachment.data, Ticket.number)
            .join(Message, Message.id == Attachment.message_id)
            .join(Ticket, Ticket.id == Message.ticket_id)
            .where(Attachment.id == attachment_id)).one_or_none()
    if row is None:
        raise NotFound(f"no attachment {attachment_id}")
    return AttachmentFile(row.filename, row.content_type, row.data, row.number)


def read_ticket_attachment(sessions: sessionmaker[Session], number: int,
                           attachment_id: int) -> AttachmentFile:
    """Attachment `attachment_id` of ticket `number`, with its bytes; NotFound when that
    ticket has no such attachment (another ticket's file is not found through this one)."""
    found = read_attachment(sessions, attachment_id)
    if found.ticket_number != number:
        raise NotFound(f"ticket #{number} has no attachment {attachment_id}")
    return found


def not_kept(session: Session, message_ids: Collection[int]) -> frozenset[int]:
    """The ids of those messages' attachments stored without their bytes (the bytes
    themselves are not read: a page lists names and sizes)."""
    if not message_ids:
        return frozenset()
    return frozenset(session.scalars(
        select(Attachment.id).where(Attachment.message_id.in_(list(message_ids)),
                                    Attachment.data.is_(None))))
