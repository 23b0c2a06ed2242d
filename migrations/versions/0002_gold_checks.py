"""gold checks: known answers, gold tasks and the labels given on them

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 23:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gold_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("answer IN ('a', 'b', 'tie')", name=op.f("ck_gold_answers_answer")),
        sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"], name=op.f("fk_gold_answers_pair_id_pairs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_answers")),
        sa.UniqueConstraint("pair_id", name=op.f("uq_gold_answers_pair_id")),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("gold", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("labels") as batch:
        batch.add_column(sa.Column("gold", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("gold")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("gold")
    op.drop_table("gold_answers")
