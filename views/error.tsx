/** @jsxImportSource hono/jsx */
/** A page that could not be shown: what was wrong, in words, and what to do about it. */
import { DATABASE_NOT_ANSWERING, type ErrorStatus } from "../src/http/errors.ts";

const TITLES: Partial<Record<ErrorStatus, string>> = {
  400: "This request is not one Crisper can answer",
  403: "Not allowed",
  404: "Not found",
  413: "Too large",
  503: "Not available right now",
};

const databaseDown = (message: string) => message === DATABASE_NOT_ANSWERING;

/** The heading of an error's page. */
export function errorTitle(status: ErrorStatus, message: string): string {
  if (databaseDown(message)) return "The database is not answering";
  return TITLES[status] ?? (status >= 500 ? "Something went wrong" : "Refused");
}

export function ErrorPage(props: { status: ErrorStatus; message: string }) {
  return (
    <>
      <h1>{errorTitle(props.status, props.message)}</h1>
      <div class={`card problem s${props.status}`}>
        {databaseDown(props.message) ? (
          <>
            <p>PostgreSQL did not answer in time, so this page cannot be shown now.</p>
            <p class="muted">
              Crisper itself is running and keeps collecting; this page reloads itself every 10 s and works again as soon as the database
              answers.{" "}
              <a href="/readyz">/readyz</a> says which part is down.
            </p>
          </>
        ) : (
          <p>{props.message}</p>
        )}
        {props.status === 400 ? (
          <p class="muted">
            Check the address or the filters: <a href="/tasks">start again from the task list</a>.
          </p>
        ) : null}
      </div>
      <p class="muted mono">HTTP {props.status}</p>
    </>
  );
}
