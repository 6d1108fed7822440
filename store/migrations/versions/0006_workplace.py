"""workplace: sign-in links, sessions, reviewed events, vendors' contact details

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Vendors and staff sign in to the workplace with a mailed single-use link (`signin_links`,
spent by setting `used_at`), then a session the cookie names (`workplace_sessions`, ended
by sign-out). Staff mark events of the review queue as looked at (`event_reviews`); the queue
reads events by kind (`ix_events_kind`). Vendors keep the contact details customers are shown.
Tickets keep their order's vendor (`vendor_id`, filled in from the orders here): a vendor's
ticket list reads `ix_tickets_vendor` instead of every one of its orders.
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a ticket's vendor (its order's), so a vendor's list reads one index of tickets
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('vendor_id', sa.Integer(), nullable=True))
    op.execute('UPDATE tickets SET vendor_id = '
               '(SELECT orders.vendor_id FROM orders WHERE orders.id = tickets.order_id)')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.alter_column('vendor_id', existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key('fk_tickets_vendor_id_vendors', 'vendors', ['vendor_id'],
                                    ['id'])
        batch_op.create_index('ix_tickets_vendor', ['vendor_id', 'status', 'due_at', 'number'],
                              unique=False)
    with op.batch_alter_table('vendors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('contact_site', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('contact_hours', sa.String(length=200), nullable=True))
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_kind', ['kind', 'id'], unique=False)
    op.create_table(
        'signin_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('vendor_id', sa.Integer(), nullable=True),
        sa.Column('staff', sa.Boolean(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('expires_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('used_at', store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['vendor_id'], ['vendors.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('signin_links', schema=None) as batch_op:
        batch_op.create_index('ix_signin_links_address', ['address', 'created_at'],
                              unique=False)
    op.create_table(
        'workplace_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('signin_id', sa.Integer(), nullable=False),
        sa.Column('vendor_id', sa.Integer(), nullable=True),
        sa.Column('staff', sa.Boolean(), nullable=False),
        sa.Column('address', sa.String(length=320), nullable=False),
        sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('expires_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('ended_at', store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['signin_id'], ['signin_links.id']),
        sa.ForeignKeyConstraint(['vendor_id'], ['vendors.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'event_reviews',
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('reviewed_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('reviewed_by', sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['events.id']),
        sa.PrimaryKeyConstraint('event_id'),
    )


def downgrade() -> None:
    op.drop_table('event_reviews')
    op.drop_table('workplace_sessions')
    with op.batch_alter_table('signin_links', schema=None) as batch_op:
        batch_op.drop_index('ix_signin_links_address')
    op.drop_table('signin_links')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_kind')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_tickets_vendor')
        batch_op.drop_constraint('fk_tickets_vendor_id_vendors', type_='foreignkey')
        batch_op.drop_column('vendor_id')
    with op.batch_alter_table('vendors', schema=None) as batch_op:
        batch_op.drop_column('contact_hours')
        batch_op.drop_column('contact_site')
        batch_op.drop_column('contact_phone')
