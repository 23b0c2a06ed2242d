"""several objectives: a prediction per (model, pair, dimension)

A multi-objective model stores one prediction per dimension (and one for the combined reward);
existing rows were made by single-objective models of the overall dimension.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 02:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("dimension", sa.String(length=50), nullable=False, server_default="overall"))
        batch.drop_constraint("uq_predictions_model_version_id_pair_id", type_="unique")
        batch.create_unique_constraint(
            "uq_predictions_model_version_id_pair_id_dimension", ["model_version_id", "pair_id", "dimension"]
        )


def downgrade() -> None:
    # keep one row per (model, pair): the reward row where there is one, else the first dimension's
    op.execute(
        "DELETE FROM predictions WHERE id NOT IN (SELECT MIN(id) FROM predictions GROUP BY model_version_id, pair_id)"
    )
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("uq_predictions_model_version_id_pair_id_dimension", type_="unique")
        batch.create_unique_constraint("uq_predictions_model_version_id_pair_id", ["model_version_id", "pair_id"])
        batch.drop_column("dimension")
