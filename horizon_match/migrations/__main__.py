"""Write a new migration from the difference between models/tables.py and the migrations.

    python -m horizon_match.migrations "add feedback table"
"""

import sys
import tempfile
from pathlib import Path

from alembic import command

from horizon_match.db import _alembic_config, make_engine, upgrade

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'migrate.db'}")
        upgrade(engine)
        existing = sorted(
            p.name for p in (Path(__file__).parent / "versions").glob("[0-9]*.py")
        )
        rev_id = f"{len(existing) + 1:04d}"
        command.revision(
            _alembic_config(engine), message=" ".join(sys.argv[1:]) or "change",
            autogenerate=True, rev_id=rev_id,
        )
