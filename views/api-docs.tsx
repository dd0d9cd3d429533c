/** @jsxImportSource hono/jsx */
/**
 * /api/docs: the OpenAPI document (src/api/openapi.ts) as a page — each
 * operation with its parameters, body and answer. Rendered on the server,
 * from the same document /api/openapi.json serves: no viewer script, nothing
 * fetched from elsewhere (the Content-Security-Policy allows neither).
 */
import type { JsonSchema, OpenApiDocument, Operation, Parameter } from "../src/api/openapi.ts";

/** A schema's type in a few words: `string`, `integer | null`, `Task[]`. */
function typeOf(schema: JsonSchema): string {
  if (typeof schema.$ref === "string") return schema.$ref.split("/").at(-1) ?? schema.$ref;
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.type === "array" && schema.items && typeof schema.items === "object" && !Array.isArray(schema.items)) return `${typeOf(schema.items)}[]`;
  if (Array.isArray(schema.type)) return schema.type.join(" | ");
  if (typeof schema.type === "string") return schema.type;
  if (Array.isArray(schema.anyOf)) return schema.anyOf.map((s) => (typeof s === "object" ? typeOf(s) : "any")).join(" | ");
  return "any";
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

function Parameters(props: { parameters: Parameter[] }) {
  if (props.parameters.length === 0) return null;
  return (
    <table>
      <thead>
        <tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>
      </thead>
      <tbody>
        {props.parameters.map((p) => (
          <tr>
            <td class="mono">{p.name}{p.required ? " *" : ""}</td>
            <td>{p.in}</td>
            <td class="mono">{typeOf(p.schema)}</td>
            <td>{p.description ?? ""}{p.example !== undefined ? <span class="muted"> — e.g. <span class="mono">{String(p.example)}</span></span> : null}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function OperationCard(props: { method: string; path: string; operation: Operation }) {
  const op = props.operation;
  const body = op.requestBody?.content["application/json"]?.schema;
  return (
    <section class="card" id={op.operationId}>
      <h2>
        <span class="mono">{props.method.toUpperCase()} {props.path}</span>
        {op["x-crisper-role"] === "admin" ? <span class="sev critical"> · admin</span> : null}
      </h2>
      <p>{op.summary}</p>
      {op.description ? <p class="muted">{op.description}</p> : null}
      <Parameters parameters={op.parameters} />
      {body ? (
        <details>
          <summary>Request body (application/json)</summary>
          <pre>{json(body)}</pre>
        </details>
      ) : null}
      {Object.entries(op.responses).map(([status, response]) => {
        const [type, media] = Object.entries(response.content)[0] ?? [];
        return (
          <details>
            <summary>
              <span class="mono">{status}</span> {response.description}
              {media ? <span class="muted mono"> {type}: {typeOf(media.schema)}</span> : null}
            </summary>
            {media ? <pre>{json(media.schema)}</pre> : null}
          </details>
        );
      })}
    </section>
  );
}

export function ApiDocsPage(props: { document: OpenApiDocument }) {
  const doc = props.document;
  return (
    <>
      <h1>{doc.info.title} API {doc.info.version}</h1>
      <p>{doc.info.description}</p>
      <p>
        The same as JSON: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). Types named in capitals are defined at the{" "}
        <a href="#schemas">end of this page</a>. * marks a required parameter.
      </p>
      {Object.entries(doc.paths).flatMap(([path, item]) =>
        Object.entries(item).map(([method, operation]) => (operation ? <OperationCard method={method} path={path} operation={operation} /> : null)),
      )}
      <h2 id="schemas">Schemas</h2>
      {Object.entries(doc.components.schemas).map(([name, schema]) => (
        <details class="card" id={`schema-${name}`}>
          <summary class="mono">{name}</summary>
          {typeof schema.description === "string" ? <p>{schema.description}</p> : null}
          <pre>{json(schema)}</pre>
        </details>
      ))}
    </>
  );
}
