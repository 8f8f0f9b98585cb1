"""The one `MetaData` every store table registers on, so `Store` creates them all (one schema, one place)."""

from sqlalchemy import MetaData

metadata = MetaData()
