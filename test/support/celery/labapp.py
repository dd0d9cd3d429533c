"""A small real Celery app for Crisper's tests: tasks that succeed, fail,
retry, sleep, echo hostile text and kill their own pool process.

Everything is configured from the environment so that one file serves every
test: LAB_BROKER_URL, LAB_RESULT_BACKEND, LAB_TASK_EVENTS (Celery's default is
off, and so is ours unless a test asks), LAB_ACKS_LATE, LAB_VISIBILITY_TIMEOUT,
LAB_PREFETCH, LAB_BEAT_INTERVAL, LAB_RESULT_EXTENDED (on unless "0"); and for configuration findings LAB_TIME_LIMIT
(task_time_limit), LAB_REJECT_ON_WORKER_LOST, LAB_RESULT_EXPIRES and
LAB_ANNOTATIONS (task_annotations, as JSON).
"""
import json
import os
import signal
import time

from celery import Celery

env = os.environ.get

app = Celery("labapp", broker=env("LAB_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    result_backend=env("LAB_RESULT_BACKEND") or None,
    result_extended=env("LAB_RESULT_EXTENDED", "1") == "1",
    task_track_started=True,
    task_send_sent_event=True,
    worker_send_task_events=env("LAB_TASK_EVENTS") == "1",
    task_acks_late=env("LAB_ACKS_LATE") == "1",
    worker_prefetch_multiplier=int(env("LAB_PREFETCH", "4")),
    broker_transport_options={"visibility_timeout": int(env("LAB_VISIBILITY_TIMEOUT", "3600"))},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
if env("LAB_TIME_LIMIT"):
    app.conf.task_time_limit = int(env("LAB_TIME_LIMIT"))
if env("LAB_REJECT_ON_WORKER_LOST") == "1":
    app.conf.task_reject_on_worker_lost = True
if env("LAB_RESULT_EXPIRES"):
    app.conf.result_expires = int(env("LAB_RESULT_EXPIRES"))
if env("LAB_ANNOTATIONS"):
    app.conf.task_annotations = json.loads(env("LAB_ANNOTATIONS"))

if env("LAB_BEAT_INTERVAL"):
    app.conf.beat_schedule = {
        "canary": {"task": "labapp.canary", "schedule": float(env("LAB_BEAT_INTERVAL"))},
    }


@app.task
def add(x, y):
    return x + y


@app.task
def boom(message="it broke"):
    raise ValueError(message)


@app.task(bind=True, max_retries=2)
def flaky(self):
    try:
        raise ConnectionError("upstream unavailable (attempt %d)" % (self.request.retries + 1))
    except ConnectionError as exc:
        raise self.retry(exc=exc, countdown=0.2)


@app.task
def sleepy(seconds=1.0):
    time.sleep(float(seconds))
    return seconds


@app.task
def echo(value):
    return value


@app.task
def suicide():
    """Kills its own pool process, as the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task
def canary():
    return "tweet"
