"""Write a migration from the difference between models/tables.py and the migrations.

    python -m horizon_match.migrations "add feedback table"     # a new revision
    python -m horizon_match.migrations --regenerate-initial      # rewrite 0001 (before 1.0 only)

Until the first release nobody has a database to upgrade, so schema work rewrites the
initial migration; after it, every change is a new revision.
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from horizon_match.db import _alembic_config, make_engine, upgrade

VERSIONS = Path(__file__).parent / "versions"

if __name__ == "__main__":
    args = sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'migrate.db'}")
        if args == ["--regenerate-initial"]:
            for old in VERSIONS.glob("0001_*.py"):
                old.unlink()
            command.revision(
                _alembic_config(engine), message="initial schema", autogenerate=True, rev_id="0001"
            )
        else:
            upgrade(engine)
            rev_id = f"{len(list(VERSIONS.glob('[0-9]*.py'))) + 1:04d}"
            command.revision(
                _alembic_config(engine), message=" ".join(args) or "change",
                autogenerate=True, rev_id=rev_id,
            )
