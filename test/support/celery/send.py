"""Sends tasks the way an application does (apply_async) or revokes them.

Reads one JSON object per line on stdin and prints one JSON line per request:
  {"task": "labapp.add", "args": [1, 2], "kwargs": {}, "queue": "celery",
   "priority": 6, "countdown": 5, "id": "..."}   -> {"id": "..."}
  {"revoke": "<task id>", "terminate": true}     -> {"revoked": "<task id>"}
"""
import json
import sys

from labapp import app

for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    req = json.loads(line)
    if "revoke" in req:
        app.control.revoke(req["revoke"], terminate=req.get("terminate", False))
        print(json.dumps({"revoked": req["revoke"]}), flush=True)
        continue
    options = {k: req[k] for k in ("queue", "priority", "countdown", "expires") if k in req}
    if "id" in req:
        options["task_id"] = req["id"]
    r = app.send_task(req["task"], args=req.get("args", []), kwargs=req.get("kwargs", {}), **options)
    print(json.dumps({"id": r.id}), flush=True)
