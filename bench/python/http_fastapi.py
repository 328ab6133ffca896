"""The FastAPI service of the "Serving over HTTP" section: POST /predict.

Usage: http_fastapi.py WORKERS

Serves `http_model.Model` under uvicorn (with uvloop and httptools, as
`uvicorn[standard]` is deployed) with WORKERS worker processes on 127.0.0.1, on a port the system picks: it binds the socket itself (as
uvicorn.run does for several workers), prints `port=N`, and serves. It stops
(gracefully, workers included) when its standard input closes, and in any
case after MAX_SECONDS, so it never outlives the bench.

The handler is `async def`: the model's call takes microseconds, so it runs
on the event loop, without a hop to a thread pool (a plain `def` handler, run
on the thread pool, measured slower here at every concurrency). Request and answer are the same JSON as the Rust
services': `{"rows": [[...16 floats], ...]}` in, `{"labels": [...],
"scores": [...]}` out; a ValueError from the model is a 422 with
`{"detail": message}`.
"""
import os
import signal
import sys
import threading

import numpy as np
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from http_model import Model

MAX_SECONDS = 30 * 60

app = FastAPI()
model = Model()


class Rows(BaseModel):
    rows: list[list[float]]


def to_array(rows):
    """rows as an (n, k) float64 array, k the first row's length; the same
    message as the Rust services' for rows of different lengths."""
    k = len(rows[0]) if rows else 0
    if any(len(row) != k for row in rows):
        raise ValueError("rows of different lengths")
    return np.array(rows, dtype=np.float64).reshape(len(rows), k)


@app.post("/predict")
async def predict(body: Rows):
    try:
        labels, scores = model.predict(to_array(body.rows))
    except ValueError as e:
        return JSONResponse(status_code=422, content={"detail": str(e)})
    return {"labels": labels.tolist(), "scores": scores.tolist()}


def main():
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    config = uvicorn.Config(
        "http_fastapi:app",
        host="127.0.0.1",
        port=0,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    sock = config.bind_socket()
    print(f"port={sock.getsockname()[1]}", flush=True)

    def stop():
        os.kill(os.getpid(), signal.SIGTERM)

    def stop_when_stdin_closes():
        sys.stdin.read()
        stop()

    threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    timer = threading.Timer(MAX_SECONDS, stop)
    timer.daemon = True
    timer.start()
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        config.load_app()
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
