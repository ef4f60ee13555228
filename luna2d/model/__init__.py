# -*- test-case-name: tests.test_kinds_table,tests.test_objects -*-
"""Object kinds described as data. ``kinds.KINDS`` is the one table that the
store and the resources read; ``fields`` turns raw JSON into typed values."""

from luna2d.model.fields import Field, coerce  # noqa: F401
from luna2d.model.kinds import KINDS, Kind, kind_named  # noqa: F401
