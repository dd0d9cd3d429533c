/**
 * What a detector pass sees of workers and tasks, built for pure rule tests:
 * one worker heartbeating at T0 and one task it started just before.
 */
import type { TaskView, WorkerView } from "../../src/detect/pass.ts";

export const T0 = 1_800_000_000;

export const worker = (o: Partial<WorkerView> = {}): WorkerView => ({
  hostname: "w1@lab",
  freq: 2,
  lastHeartbeatAt: T0,
  onlineAt: T0 - 100,
  offlineAt: null,
  processed: 10,
  reservedTaskIds: [],
  ...o,
});

export const task = (o: Partial<TaskView> = {}): TaskView => ({
  id: "t1",
  name: "app.charge",
  state: "STARTED",
  worker: "w1@lab",
  receivedAt: T0 - 5,
  startedAt: T0 - 4,
  lastEventAt: T0 - 4,
  ...o,
});
