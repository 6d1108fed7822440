"""tickets(status, type) index: the open-ticket gauge of /metrics reads it alone

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tickets_status_type', 'tickets', ['status', 'type'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_tickets_status_type', table_name='tickets')
