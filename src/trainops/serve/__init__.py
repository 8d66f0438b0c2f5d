"""Controller mode (`trainops serve`, DESIGN §17): the same Reconciler as `apply`, run on an
interval and at once on a verified webhook, with /healthz, Prometheus /metrics and a read-only
status page. `status_page` (the page itself) is plain Python and also backs `status --html`;
the ASGI stack (Starlette, uvicorn), `standardwebhooks` and `prometheus_client` are imported only
by the `controller`, `webhooks`, `metrics` and `app` modules (the `trainops[serve]` extra).
"""
