"""intake heartbeats: each SMTP listener's intake threads, for /healthz

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'intake_heartbeats',
        sa.Column('listener', sa.String(length=300), nullable=False),
        sa.Column('address', sa.String(length=280), nullable=False),
        sa.Column('started_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('beat_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('threads', sa.Integer(), nullable=False),
        sa.Column('alive', sa.Integer(), nullable=False),
        sa.Column('restarts', sa.Integer(), nullable=False),
        sa.Column('restarted_at', store.types.UTCDateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('listener'),
    )


def downgrade() -> None:
    op.drop_table('intake_heartbeats')
