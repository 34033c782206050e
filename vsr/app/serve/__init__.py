"""`vsr serve`: vsr as a transcoding step in someone else's pipeline, over HTTP.

    server  -> uvicorn, its limits, the drain on SIGTERM
    api     -> the routes (FastAPI), the token, errors as one JSON line
    service -> the parts of one service, and what the API may ask of them
    jobspec -> a job request checked into `vsr upscale`'s own parsed options
    confine -> the paths and URLs a job may use
    store   -> the durable queue (SQLite)
    runner  -> the worker threads, the shared models
    metrics -> Prometheus figures read from all of the above
    page    -> the web page and a job's before/after

Needs the `serve` extra (FastAPI, uvicorn, prometheus-client).
"""
