"""Counting sites keep their municipality (issue 9: authorisation).

`counting_site` (owner: the mobility service) holds, per counting site, the
municipality of its first stored count. A later count naming another
municipality is stored only when its producer may also write the stored
one (`klimapuls.core.authorisation.site_owner_issue`), so no producer moves
a site into or out of another municipality. Filled from the stored counts:
the municipality of each site's earliest received count.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SITES = """
CREATE TABLE counting_site (
    site_id text NOT NULL,
    municipality_code text NOT NULL,
    first_event_id text NOT NULL,
    first_received timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_counting_site PRIMARY KEY (site_id)
);
COMMENT ON TABLE counting_site IS
    'The municipality of each counting site''s first stored count (owner: mobility)';
INSERT INTO counting_site (site_id, municipality_code, first_event_id,
    first_received)
SELECT DISTINCT ON (site_id) site_id, municipality_code, event_id, received_at
FROM mobility_count
ORDER BY site_id, received_at, interval_start, event_id;
"""


def upgrade() -> None:
    op.execute(_SITES)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS counting_site")
