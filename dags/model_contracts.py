"""
### Model modules that break the contract

Not a DAG: this file checks every module of `dags/models/` and fails to import, naming each
module and what is wrong (`dags/models/churn.py: TARGET is not defined`), while any module
does. Airflow then lists it among the DAG import errors, and the training DAGs of the other
models (`model_training.py`) stay as they are: an import error marks every DAG of its own
file, so it must not be that file's.
"""

from __future__ import annotations

from adclick.contract import ContractError
from adclick_airflow import settings

_broken = settings.training_models()[1]
if _broken:
    raise ContractError("\n".join(str(error) for error in _broken))
