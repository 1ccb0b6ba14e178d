"""The HTTP edge: REST routes, their schemas and OpenAPI document, the error middleware, pages."""
