"""tickets keep the customer's own subject; messages say whether their sender was verified

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

`tickets.title`: the subject of the mail that opened the ticket, shown in the body of its
mails and on its pages (mail subjects stay fixed for vendors' filters). `messages.verified`:
false for a comment from a mail matched only by subject token and From (which can be
forged), so mails and pages can mark it. Both are empty on rows from before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tickets', sa.Column('title', sa.String(length=300), nullable=True))
    op.add_column('messages', sa.Column('verified', sa.Boolean(), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35 and later), not a batch: a batch copies
    # the table and drops the old one, which SQLite refuses while messages and outbox rows
    # name the ticket (foreign keys are on).
    op.drop_column('messages', 'verified')
    op.drop_column('tickets', 'title')
