"""The API description: an OpenAPI 3.1 document of both API families at ``/openapi.json`` and a
reference page at ``/docs`` (``pages.py``), built from the routes and the descriptions here."""
