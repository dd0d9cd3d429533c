/** @jsxImportSource hono/jsx */
/** A page that could not be shown: what was wrong, in words, and what to do about it. */
import type { ErrorStatus } from "../src/http/errors.ts";

const TITLES: Partial<Record<ErrorStatus, string>> = {
  400: "This request is not one Crisper can answer",
  403: "Not allowed",
  404: "Not found",
  413: "Too large",
  503: "The database is not answering",
};

/** The heading a status gets on its page. */
export const errorTitle = (status: ErrorStatus) => TITLES[status] ?? (status >= 500 ? "Something went wrong" : "Refused");

export function ErrorPage(props: { status: ErrorStatus; message: string }) {
  return (
    <>
      <h1>{errorTitle(props.status)}</h1>
      <div class={`card problem s${props.status}`}>
        <p>{props.message}</p>
        {props.status === 503 ? (
          <p class="muted">
            Crisper itself is running: it keeps what it collects until PostgreSQL is back, and this page works again as soon as the
            database answers. <a href="/readyz">/readyz</a> says which part is down.
          </p>
        ) : null}
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
