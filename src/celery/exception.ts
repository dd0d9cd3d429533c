/**
 * A task's exception as people expect to read it.
 *
 * When a pool process dies (the OOM killer, SIGKILL), Celery 5.2 reports
 * `task-failed` with `exception: "ExceptionWithTraceback()"`: the real error,
 * `WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)`, is only in
 * the traceback's last line (fixture celery-5.2-redis-mixed). Recover it.
 */
const UNHELPFUL = new Set(["ExceptionWithTraceback()", "", "None"]);
const LAST_LINE = /^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Lost\w*|Terminated|Warning)?):\s?(.*)$/;

export function normalizeException(exception: unknown, traceback: unknown): string | undefined {
  const exc = typeof exception === "string" ? exception : undefined;
  if (exc !== undefined && !UNHELPFUL.has(exc.trim())) return exc;
  if (typeof traceback !== "string") return exc;
  const lines = traceback.trimEnd().split("\n");
  const last = lines[lines.length - 1]?.trim() ?? "";
  const m = LAST_LINE.exec(last);
  if (!m) return exc;
  const qualified = m[1] ?? "";
  const name = qualified.slice(qualified.lastIndexOf(".") + 1);
  const message = m[2] ?? "";
  return message ? `${name}(${pyStr(message)})` : `${name}()`;
}

/** Python's repr of a str, close enough for display. */
export function pyStr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  const body = s.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
  return q + (q === "'" ? body.replaceAll("'", "\\'") : body) + q;
}
