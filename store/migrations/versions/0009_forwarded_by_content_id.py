"""messages say who forwarded them; attachments keep their Content-ID

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

`messages.forwarded_by`: the vendor or staff address that forwarded a customer's mail to
support@; the message is the customer's and is shown "forwarded by …". `attachments.
content_id`: the part's Content-ID (without angle brackets), which `cid:` URLs in the mail's
HTML name, so inline images show in place. Both are empty on rows from before.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('forwarded_by', sa.String(length=320), nullable=True))
    op.add_column('attachments', sa.Column('content_id', sa.String(length=998), nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN, not a batch (see 0007: SQLite refuses to drop a named table)
    op.drop_column('attachments', 'content_id')
    op.drop_column('messages', 'forwarded_by')
