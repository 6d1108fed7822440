"""support subscriptions as order lines; vendors' reply templates

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

An order line of kind `support` (the addons profile's Business Care) covers one product
(`orders.covers_sku`) on one shop (`orders.shop_url`) until `orders.valid_until`; tech support
looks them up by vendor and SKU (`ix_orders_vendor_covers`). Vendors keep named reply
templates (`reply_templates`); their signature is the existing `vendors.signature`.
Both columns are empty on existing orders, which are products, not subscriptions.
"""
from alembic import op
import sqlalchemy as sa
import store.types


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.add_column(sa.Column('covers_sku', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('valid_until', store.types.UTCDateTime(), nullable=True))
        batch_op.create_index('ix_orders_vendor_covers', ['vendor_id', 'covers_sku'],
                              unique=False)
    op.create_table(
        'reply_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('vendor_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', store.types.UTCDateTime(), nullable=False),
        sa.Column('updated_at', store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['vendor_id'], ['vendors.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('vendor_id', 'name'),
    )


def downgrade() -> None:
    op.drop_table('reply_templates')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_vendor_covers')
        batch_op.drop_column('valid_until')
        batch_op.drop_column('covers_sku')
