/**
 * GET /api/openapi.json: the OpenAPI 3.1 document of the JSON API, generated
 * from the route registry (registry.ts) and the zod schemas that validate
 * the requests, never written by hand. A request's schema is documented as
 * what it takes (zod's `io: "input"`: a query parameter is text), an answer
 * as what it gives. Schemas with an id (`.meta({ id: "Task" })`) become
 * components, referenced wherever they appear.
 */
import { z } from "zod";
import { VERSION } from "../version.ts";
import type { ApiRoute } from "./registry.ts";
import { ErrorAnswer } from "./schemas.ts";

export type JsonSchema = z.core.JSONSchema.BaseSchema;
type Io = "input" | "output";

const ERROR_MEANING: Record<number, string> = {
  400: "The request is not valid: `error` names the parameter and what was expected.",
  401: "Sign in: this Crisper has CRISPER_AUTH set (HTTP Basic).",
  403: "Refused: without CRISPER_AUTH Crisper is read-only; a viewer may not act; a request from another site.",
  404: "Not found: `error` says what (an id never seen, with a `hint`).",
  409: "Conflict: `error` gives the reason.",
  413: "The request body is too large.",
  415: "Send the body as application/json.",
  502: "The broker did not take the command.",
  503: "The database is not answering in time (GET /readyz says what is down), or this process has no broker to send a command through.",
};

export interface Parameter {
  name: string;
  in: "path" | "query";
  required: boolean;
  description?: string;
  example?: unknown;
  schema: JsonSchema;
}

interface Response {
  description: string;
  content: Record<string, { schema: JsonSchema }>;
}

export interface Operation {
  operationId: string;
  summary: string;
  description?: string;
  "x-crisper-role": ApiRoute["role"];
  parameters: Parameter[];
  requestBody?: { required: true; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, Response>;
}

/** Hono's `/tasks/:id` as OpenAPI writes it: `/tasks/{id}`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, "{$1}");

/**
 * Collects the schemas of one document: each zod schema becomes JSON Schema
 * 2020-12 (OpenAPI 3.1's own dialect) with its named parts moved to
 * components.schemas and every `$ref` pointing there.
 */
function schemaCollector() {
  const components: Record<string, JsonSchema> = {};
  const toComponentRefs = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(toComponentRefs);
    if (value === null || typeof value !== "object") return value;
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === "$ref" && typeof v === "string" ? v.replace(/^#\/\$defs\//, "#/components/schemas/") : toComponentRefs(v),
      ]),
    );
  };
  function schemaOf(schema: z.ZodType, io: Io): JsonSchema {
    const { $schema: _dialect, $defs, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" });
    for (const [id, def] of Object.entries($defs ?? {})) components[id] ??= toComponentRefs(def) as JsonSchema;
    return toComponentRefs(rest) as JsonSchema;
  }
  return { schemaOf, components };
}

/** The path or query parameters of a route: one per property of its object schema. */
function parameters(where: "path" | "query", schema: z.ZodObject | undefined, schemaOf: (s: z.ZodType, io: Io) => JsonSchema): Parameter[] {
  if (!schema) return [];
  const object = schemaOf(schema, "input");
  const required = new Set(object.required ?? []);
  return Object.entries(object.properties ?? {}).map(([name, property]) => {
    const { description, example, ...rest } = typeof property === "object" ? property : {};
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" ? { description } : {}),
      ...(example !== undefined ? { example } : {}),
      schema: rest,
    };
  });
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>;

export function openApiDocument(routes: Readonly<Record<string, ApiRoute>>, mountedAt = "/api") {
  const { schemaOf, components } = schemaCollector();
  const errorSchema = schemaOf(ErrorAnswer, "output");
  const errorResponse = (status: number): Response => ({
    description: ERROR_MEANING[status] ?? "An error.",
    content: { "application/json": { schema: errorSchema } },
  });

  const paths: Record<string, Partial<Record<ApiRoute["method"], Operation>>> = {};
  for (const [operationId, route] of Object.entries(routes)) {
    const validated = route.params || route.query || route.body;
    const errors = [...(validated ? [400] : []), 401, ...(route.errors ?? []), 503].sort((a, b) => a - b);
    const type = route.contentType ?? "application/json";
    const operation: Operation = {
      operationId,
      summary: route.summary,
      ...(route.role === "admin" ? { description: "Admin only (CRISPER_AUTH). Without CRISPER_AUTH Crisper is read-only and refuses it." } : {}),
      "x-crisper-role": route.role,
      parameters: [...parameters("path", route.params, schemaOf), ...parameters("query", route.query, schemaOf)],
      ...(route.body
        ? { requestBody: { required: true, content: { "application/json": { schema: schemaOf(route.body, "input") } } } }
        : {}),
      responses: {
        [String(route.status ?? 200)]: { description: route.status === 201 ? "Created." : "OK.", content: { [type]: { schema: schemaOf(route.answer, "output") } } },
        ...Object.fromEntries(errors.map((s) => [String(s), errorResponse(s)])),
      },
    };
    const path = mountedAt + openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method]: operation };
  }

  return {
    openapi: "3.1.1",
    info: {
      title: "Crisper",
      version: VERSION,
      summary: "Self-hosted monitor for Celery: tasks, workers, queues, Beat schedules and alerts.",
      description:
        "Timestamps are ISO 8601 UTC. Lists are newest first, bounded by `limit` (default 50, at most 500), and paged with `cursor` = the previous page's `next_cursor`. Errors are `{\"error\": \"…\"}`. Everything a task carries (args, kwargs, results, tracebacks, names, hostnames) is untrusted text.",
      license: { name: "MIT", identifier: "MIT" },
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: { basic: { type: "http", scheme: "basic", description: "The users of CRISPER_AUTH. Without CRISPER_AUTH no credentials are asked." } },
    },
    security: [{ basic: [] }, {}],
  };
}
