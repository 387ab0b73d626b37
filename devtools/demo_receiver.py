"""A demo receiver for `make run`: an HTTP endpoint on 127.0.0.1 that fails some of the time.

Roughly: 15 % answer 503 (transient: retried), 5 % answer 429 with Retry-After, orders marked
`"valid": false` answer 400 (permanent: a failure for the portal), the rest 200.
`python -m devtools.demo_receiver [--port 7072] [--seed N]`
"""

from __future__ import annotations

import argparse
import json
import logging
import random

from aiohttp import web

logger = logging.getLogger("demo-receiver")


def build_app(rng: random.Random) -> web.Application:
    counts = {"ok": 0, "503": 0, "429": 0, "400": 0}

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            valid = json.loads(body).get("valid", True) is not False
        except (ValueError, AttributeError):
            valid = True
        roll = rng.random()
        if not valid:
            rejection = {"error": "order failed validation: 'valid' is false"}
            outcome, response = "400", web.json_response(rejection, status=400)
        elif roll < 0.15:
            outcome, response = "503", web.Response(status=503, text="receiver is busy, try again")
        elif roll < 0.20:
            outcome, response = "429", web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        else:
            outcome, response = "ok", web.json_response({"received": request.headers.get("Idempotency-Key")})
        counts[outcome] += 1
        logger.info("demo receiver answered %s (totals %s)", outcome, counts)
        return response

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application()
    app.router.add_post("/orders", receive)
    app.router.add_get("/stats", stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(build_app(random.Random(args.seed)), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
