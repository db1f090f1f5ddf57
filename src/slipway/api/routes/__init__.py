"""One router per resource.

Integers a route hands to the database (ids, versions, positions in a log) are bounded
to what a 64-bit integer column holds: a larger one is a 400 naming the parameter, not
an overflow inside SQLite's or PostgreSQL's driver.
"""

from typing import Annotated

from annotated_types import Interval

MAX_ID = 2**63 - 1
Int64 = Annotated[int, Interval(ge=-MAX_ID - 1, le=MAX_ID)]
