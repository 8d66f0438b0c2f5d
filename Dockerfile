# trainops serve as a container: the controller for one repository (docs/serve.md).
# Build: docker build -t trainops .   Run: see docs/serve.md (a clone is mounted at /repo).
FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip install --no-cache-dir '.[serve]'
RUN useradd --create-home --uid 10001 trainops
USER trainops
WORKDIR /repo
EXPOSE 8080
# Listen on all interfaces inside the container: the page and API then require
# TRAINOPS_SERVE_TOKEN (webhooks rely on their signatures).
ENTRYPOINT ["trainops", "serve", "--listen", "0.0.0.0:8080"]
CMD ["--interval", "60s", "--github"]
