# The tieout image: Airflow 3.3.2 plus tieout's runtime dependencies and package.
# requirements-runtime.lock has no dev extras (pytest, selenium, linters) and pins every
# package by hash; `make lock` writes it beside requirements.lock (the dev tools' lock).
FROM apache/airflow:3.3.2-python3.11
USER root
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --chown=airflow:root requirements-runtime.lock pyproject.toml README.md /opt/tieout/
COPY --chown=airflow:root include /opt/tieout/include
RUN pip install --no-cache-dir uv==0.13.9 \
 && uv pip install --no-cache --require-hashes --python "$(which python)" \
        -r /opt/tieout/requirements-runtime.lock \
 && uv pip install --no-cache --python "$(which python)" --no-deps -e /opt/tieout
