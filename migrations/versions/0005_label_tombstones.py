"""label tombstones: deletions announced by a webhook, kept so a late create or update is dropped

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 18:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=50), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("source_id", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_tombstones")),
        sa.UniqueConstraint(
            "backend", "project", "source_id", name=op.f("uq_label_tombstones_backend_project_source_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("label_tombstones")
