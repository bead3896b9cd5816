"""The little raw SQL the hot paths need, on PostgreSQL: names quoted, and commits that do not wait.

The ORM costs a statement or a round trip more where a batch needs one; the
statements built with these are each a model's own table and columns.
"""

from django.db import connection, models

# Joined into a statement, lets its transaction's commit return before
# PostgreSQL flushed it to disk (for that transaction only).
ASYNC_COMMIT = "(SELECT set_config('synchronous_commit', 'off', true)) AS async_commit"


def quoted_names(model: type[models.Model]) -> tuple[str, dict[str, str]]:
    """A model's table, and its columns by field name, quoted for this connection's SQL."""
    quote = connection.ops.quote_name
    columns = {f.name: f.column for f in model._meta.fields}
    return quote(model._meta.db_table), {
        name: quote(column) for name, column in columns.items() if column is not None
    }
