"""Names and addresses the stack's components agree on, defined once.

Plain constants with no imports: the Airflow side, the Flask monitor's image (which has no
Airflow and no ML libraries) and the embedded stack all read them from here.
"""

TRAINING_DAG_ID = "ad_click_training"
# The training task whose XCom return value carries the registered model and its metrics.
RESULT_TASK_ID = "load_model"
# With `require_approval`, the task that waits for a person (state `awaiting_input`) and the
# one that returns the run's result once the answer is in (who answered, promoted or not).
APPROVAL_TASK_ID = "approve_promotion"
SETTLED_RESULT_TASK_ID = "record_approval"
# A result's `approval.state` (adclick.approval): waiting, or who settled it how.
APPROVAL_AWAITING = "awaiting_approval"
APPROVAL_APPROVED = "approved"
APPROVAL_REJECTED = "rejected"
APPROVAL_TIMED_OUT = "timed_out"
# A result's `promotion.decision` (adclick.promotion): the challenger against the champion.
PROMOTION_PROMOTED = "promoted"
PROMOTION_KEPT_CHAMPION = "kept_champion"
PROMOTION_NO_CHAMPION = "no_champion"
PROMOTION_CHAMPION_UNSCORABLE = "champion_unscorable"
# The task state of an approval waiting for its answer (Airflow 3.3's human-in-the-loop).
AWAITING_INPUT_STATE = "awaiting_input"

# The read-only Airflow account the monitor DAG and the Flask monitor read Airflow with.
MONITOR_USERNAME = "monitor"
# The account that may answer an approval (SimpleAuthManager role `user`), nothing more.
APPROVER_USERNAME = "approver"

AIRFLOW_URL = "http://127.0.0.1:8080"
FLASK_MONITOR_BIND = "127.0.0.1:5000"
FLASK_MONITOR_URL = f"http://{FLASK_MONITOR_BIND}"
# The Flask monitor's service in docker-compose.yaml: its host name on the stack's network.
FLASK_MONITOR_SERVICE = "flask-monitor"

# Every training DAG carries these tags and its model's name: how the monitor finds them.
TRAINING_TAGS = ("ml", "training")
# Every scoring DAG carries these tags and its model's name; the monitor lists its batches
# from what these tasks return (the scoring summary, the drift report and its MLflow run).
SCORING_TAGS = ("ml", "scoring")
# Where the scoring DAGs write, under the data root: predictions/<input name>/<version>.parquet
PREDICTIONS_DIR = "predictions"
SCORING_TASK_ID = "score_batch"
DRIFT_TASK_ID = "drift_report"
DRIFT_TRACKING_TASK_ID = "log_drift"
# A model's training DAG is "<model name>_training" (the ad-click one keeps TRAINING_DAG_ID).
TRAINING_DAG_SUFFIX = "_training"

# The model service (model_server): its address in the embedded stack and its host name on
# the Compose network.
MODEL_SERVER_BIND = "127.0.0.1:5002"
MODEL_SERVER_SERVICE = "model-server"
# Who gets the stack's alert mails unless ADCLICK_ALERT_EMAILS says otherwise.
ALERT_EMAILS = "ml-team@adclick.local"
