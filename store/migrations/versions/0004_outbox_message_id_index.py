"""outbox rows looked up by Message-ID

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Message-IDs are random and written with each outbox row (no longer `<outbox-N.ticketgw@…>`,
which named the row): a reply's In-Reply-To/References and a delivery report's quoted
Message-ID are found through this index. Rows from before keep the id they were sent with.
"""
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_message_id', ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_message_id')
