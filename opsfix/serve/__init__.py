"""`opsfix serve`: Alertmanager's webhook starts the matching playbook's run.

The layers, one module each: `payload` (what Alertmanager sends), `rules` (the rules file:
which alert runs which playbook on which host, with what limits), `targets` (an alert's
label to an inventory host), `limits` (runs per host per hour, cool-downs), `dispatch`
(the semantics: queue, join, cancel, one run at a time), `execute` (a run through the
same engine as `opsfix apply`, recorded in history), `answer` (Alertmanager silences and
notification webhooks), `metrics`, `guard` (authentication, body size, rate limits),
`app` (the ASGI application) and `server` (uvicorn, TLS, graceful shutdown).

Starlette and uvicorn load only when `opsfix serve` runs.
"""
