# Airflow image for the Compose stack: the official Airflow image plus the project's locked
# dependencies, its packages from plugins/ (installed, see pyproject.toml), DAGs and config.
# docker-compose.yaml bind-mounts dags/ and config/ over the copies made here, so edits show
# up without a rebuild; the copies make the image usable on its own.
#
# The base is a build argument so a locally built stand-in can replace it where no registry
# is reachable (tests/docker/airflow); it must ship the Airflow version the lock pins. The
# slim image holds Airflow core alone, so the lock decides every other package; the full
# image's ~30 providers pin neighbours the lock moves, and pip would leave them broken.
ARG AIRFLOW_BASE_IMAGE=apache/airflow:slim-3.3.2-python3.12
FROM ${AIRFLOW_BASE_IMAGE}

ARG AIRFLOW_VERSION=3.3.2

# The upstream image installs Python packages for user airflow (uid 50000, PIP_USER=true);
# so does this.
USER 50000

# The lock pins apache-airflow itself to the base image's version, so pip keeps the installed
# Airflow and only adds or aligns its neighbours. Fail the build if the base ships another
# Airflow: the lock was resolved (and tested) against this exact version.
COPY --chown=airflow:0 requirements/airflow.lock /tmp/requirements/airflow.lock
RUN python -c "import importlib.metadata as m, sys; v = m.version('apache-airflow'); \
sys.exit(0 if v == '${AIRFLOW_VERSION}' else f'base image has Airflow {v}, lock needs ${AIRFLOW_VERSION}')" \
    && pip install --no-cache-dir -r /tmp/requirements/airflow.lock \
    && python -c "import importlib.metadata as m, sys; v = m.version('apache-airflow'); \
sys.exit(0 if v == '${AIRFLOW_VERSION}' else f'installing the lock changed Airflow to {v}')" \
    && pip check

# Run-time folders the stack mounts volumes on; created here so fresh named volumes inherit
# the airflow user's ownership.
RUN mkdir -p /opt/airflow/data /opt/airflow/model /opt/airflow/artifacts /opt/airflow/auth

# The project's packages the DAGs import (plugins/); nothing lands in Airflow's plugins folder,
# so its plugin manager has nothing to import at start-up.
COPY --chown=airflow:0 pyproject.toml /tmp/adclick/pyproject.toml
COPY --chown=airflow:0 plugins/ /tmp/adclick/plugins/
# pip exits 0 even when what it installed conflicts with what was there: `pip check` fails
# the build on any unmet or conflicting requirement instead.
RUN pip install --no-cache-dir --no-deps /tmp/adclick && rm -rf /tmp/adclick && pip check

COPY --chown=airflow:0 config/ /opt/airflow/config/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 docker/airflow/ /opt/adclick/bin/

ENV AIRFLOW_CONFIG=/opt/airflow/config/airflow.cfg \
    ADCLICK_DATA_DIR=/opt/airflow/data \
    ADCLICK_MODEL_DIR=/opt/airflow/model \
    ADCLICK_ARTIFACT_DIR=/opt/airflow/artifacts
