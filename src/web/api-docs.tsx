/** @jsxImportSource hono/jsx */
/** GET /api/docs: the API's OpenAPI document as a page (views/api-docs.tsx). */
import { Hono } from "hono";
import { ApiDocsPage } from "../../views/api-docs.tsx";
import { Layout } from "../../views/layout.tsx";
import { openApiDocument } from "../api/openapi.ts";
import { API } from "../api/registry.ts";
import { currentUser } from "../http/auth.ts";
import type { Env } from "../http/context.ts";

export function createApiDocsRoutes() {
  const document = openApiDocument(API);
  const routes = new Hono<Env>();
  routes.get(`/api${API.docs.path}`, (c) =>
    c.html(
      <Layout user={currentUser(c)} title="API" path="/api/docs">
        <ApiDocsPage document={document} />
      </Layout>,
    ),
  );
  return routes;
}
