"""Keyset paging over a table ordered by (created_at, id): a page costs the same at any depth.

An offset would make page k re-read the k pages before it; the cursor (the last row's created_at and id)
lets an index seek straight to the next page, and rows created meanwhile neither shift nor repeat pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Table, and_, or_, select


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended."""

    created_at: float
    id: str


def page_query(table: Table, page_size: int, after: Cursor | None) -> Select[Any]:
    """One row more than the page, so the caller knows whether another page follows."""
    query = select(table)
    if after is not None:
        query = query.where(
            or_(
                table.c.created_at > after.created_at,
                and_(table.c.created_at == after.created_at, table.c.id > after.id),
            )
        )
    return query.order_by(table.c.created_at, table.c.id).limit(page_size + 1)


def split_page(rows: Sequence[Any], page_size: int) -> tuple[Sequence[Any], Cursor | None]:
    """The page's rows and the cursor of the next page (None on the last page)."""
    if len(rows) <= page_size:
        return rows, None
    last = rows[page_size - 1]
    return rows[:page_size], Cursor(created_at=last.created_at, id=last.id)
