/**
 * The simulated Celery application: a shop's tasks on two queues (`celery`
 * for the web shop's work, `reports` for slow reporting), each with how long
 * it runs and how it ends. Tracebacks read like Celery 5.2's on Python 3.11.
 */

export type Outcome =
  | { kind: "success"; result: unknown }
  | { kind: "failure"; exception: string; traceback: string }
  | { kind: "retry"; exception: string; traceback: string; countdownS: number };

export interface TaskCall {
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  queue: string;
  /** Runs for this long (seconds) on a worker. */
  runtimeS: number;
  /** `acks_late=True`: the message is acknowledged when the task ends, not when it starts. */
  acksLate?: boolean;
  /** Sent with `expires=` this many seconds: discarded unrun by a worker that takes it later. */
  expiresInS?: number;
}

const rand = (min: number, max: number) => min + Math.random() * (max - min);
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const id = (min: number, max: number) => Math.floor(rand(min, max));

const CELERY_FRAMES = `Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/celery/app/trace.py", line 451, in trace_task
    R = retval = fun(*args, **kwargs)
                 ^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/celery/app/trace.py", line 734, in __protected_call__
    return self.run(*args, **kwargs)
           ^^^^^^^^^^^^^^^^^^^^^^^^^
`;

function traceback(frames: string, last: string): string {
  return `${CELERY_FRAMES}${frames}${last}\n`;
}

/** The shop's everyday traffic, as the web application sends it. */
export function everydayTask(): TaskCall {
  const r = Math.random();
  if (r < 0.3) return { name: "shop.tasks.send_welcome_email", args: [id(1000, 99999)], kwargs: {}, queue: "celery", runtimeS: rand(0.05, 0.4) };
  if (r < 0.55) return { name: "shop.tasks.charge_card", args: [id(50000, 60000)], kwargs: { amount_cents: id(500, 25000) }, queue: "celery", runtimeS: rand(0.1, 0.8) };
  if (r < 0.75) return { name: "shop.tasks.sync_inventory", args: [`SKU-${id(100, 999)}`], kwargs: {}, queue: "celery", runtimeS: rand(0.2, 0.6) };
  if (r < 0.9) return { name: "shop.tasks.resize_image", args: [id(1, 5000)], kwargs: { width: pick([320, 640, 1280]) }, queue: "celery", runtimeS: rand(0.8, 2.5) };
  return { name: "reports.tasks.render_invoice_pdf", args: [`INV-${id(10000, 99999)}`], kwargs: {}, queue: "reports", runtimeS: rand(0.8, 2) };
}

/** How a run of this task ends; `retries` is how often it was retried already. */
export function outcomeOf(call: TaskCall, retries: number): Outcome {
  switch (call.name) {
    case "shop.tasks.charge_card":
      if (Math.random() < 0.12) {
        return {
          kind: "failure",
          exception: "CardDeclined('card ending 4242 was declined: insufficient funds')",
          traceback: traceback(
            `  File "/srv/shop/shop/tasks.py", line 88, in charge_card
    receipt = payments.charge(order.card_token, amount_cents)
              ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/srv/shop/shop/payments.py", line 41, in charge
    raise CardDeclined(f"card ending {card.last4} was declined: {reason}")
`,
            "shop.payments.CardDeclined: card ending 4242 was declined: insufficient funds",
          ),
        };
      }
      return { kind: "success", result: { receipt: `rcpt_${id(100000, 999999)}`, status: "captured" } };
    case "shop.tasks.sync_inventory":
      // The supplier's API times out now and then; the task retries itself (max_retries=3).
      if (Math.random() < 0.3) {
        if (retries >= 3) {
          return {
            kind: "failure",
            exception: "MaxRetriesExceededError(\"Can't retry shop.tasks.sync_inventory[…] args:(…) kwargs:{}\")",
            traceback: traceback(
              `  File "/srv/shop/shop/tasks.py", line 121, in sync_inventory
    raise self.retry(exc=exc, countdown=2)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/celery/app/task.py", line 719, in retry
    raise self.MaxRetriesExceededError(
`,
              "celery.exceptions.MaxRetriesExceededError: Can't retry shop.tasks.sync_inventory",
            ),
          };
        }
        return {
          kind: "retry",
          countdownS: 2,
          exception: "ConnectionError('supplier API timed out after 5.0 s')",
          traceback: traceback(
            `  File "/srv/shop/shop/tasks.py", line 121, in sync_inventory
    raise self.retry(exc=exc, countdown=2)
          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/lib/python3/dist-packages/celery/app/task.py", line 738, in retry
    raise ret
`,
            "celery.exceptions.Retry: Retry in 2s: ConnectionError('supplier API timed out after 5.0 s')",
          ),
        };
      }
      return { kind: "success", result: { updated: id(0, 40) } };
    case "shop.tasks.send_welcome_email":
      return { kind: "success", result: "sent" };
    case "shop.tasks.resize_image":
      return { kind: "success", result: `s3://shop-media/resized/${id(1, 99999)}.webp` };
    case "reports.tasks.render_invoice_pdf":
      return { kind: "success", result: `s3://shop-invoices/${call.args[0]}.pdf` };
    case "reports.tasks.reconcile_accounts":
      return { kind: "success", result: { reconciled: id(100, 900), mismatches: 0 } };
    case "reports.tasks.export_ledger":
      return { kind: "success", result: { rows: id(10000, 90000) } };
    default:
      return { kind: "success", result: null };
  }
}

/** Beat's two schedules: what it sends, and how often (the demo declares them to Crisper in BEAT_SCHEDULES). */
export const BEAT_SCHEDULE = [
  { name: "cleanup-expired-sessions", task: "shop.tasks.cleanup_sessions", everyS: 10, queue: "celery", runtimeS: 0.3 },
  { name: "refresh-sales-dashboard", task: "reports.tasks.refresh_dashboard", everyS: 15, queue: "reports", runtimeS: 0.8 },
] as const;

/** A burst of slow image work: what the worker killed mid-task holds, running and prefetched. */
export function slowImageTask(): TaskCall {
  return { name: "shop.tasks.resize_image", args: [id(1, 5000)], kwargs: { width: 2560 }, queue: "celery", runtimeS: rand(6, 9) };
}

/** A late-acknowledged export that runs past the visibility timeout: Redis hands it to a second worker. */
export function longExport(runtimeS: number): TaskCall {
  return { name: "reports.tasks.export_ledger", args: ["2026-Q3"], kwargs: { format: "csv" }, queue: "reports", runtimeS, acksLate: true };
}

/** A task that hangs on a lock (until it is let go, much later). */
export function hangingTask(runtimeS: number): TaskCall {
  return { name: "reports.tasks.reconcile_accounts", args: [id(1, 40)], kwargs: {}, queue: "reports", runtimeS };
}

/** The month-end rush of invoices: more than the reports workers can drain. */
/** A payment reminder is worth sending only soon: `expires=2` (it sits behind the invoice rush and expires). */
export function reminderTask(): TaskCall {
  return { name: "reports.tasks.send_payment_reminder", args: [`INV-${id(10000, 99999)}`], kwargs: {}, queue: "reports", runtimeS: rand(0.2, 0.5), expiresInS: 2 };
}

export function invoiceTask(): TaskCall {
  return { name: "reports.tasks.render_invoice_pdf", args: [`INV-${id(10000, 99999)}`], kwargs: {}, queue: "reports", runtimeS: rand(1.5, 2.5) };
}
