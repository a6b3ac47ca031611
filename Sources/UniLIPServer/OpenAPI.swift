/// The API as OpenAPI 3.0, served at /api/openapi.json.
enum OpenAPI {
    static let json = #"""
{
  "openapi": "3.0.3",
  "info": {"title": "UniLIP server", "version": "1.0.0",
           "description": "Ask about, reconstruct, edit and generate images with the UniLIP models. Jobs run one at a time; poll them. Every error is {\"error\": \"...\"}."},
  "paths": {
    "/api/health": {"get": {"summary": "Liveness, loaded models and queue counters",
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
    "/api/samples": {"get": {"summary": "ShapesWorld test scenes usable as inputs",
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object", "properties": {"samples": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}}}}}}}}}},
    "/api/samples/{name}": {"get": {"summary": "A sample scene as PNG (name SPLIT-INDEX, e.g. test-3 or test-3.png)",
      "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/api/jobs": {"post": {"summary": "Submit a job",
      "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}}},
      "responses": {"202": {"description": "accepted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}},
                    "400": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
                    "422": {"$ref": "#/components/responses/Error"},
                    "429": {"description": "queue full; see Retry-After", "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
    "/api/jobs/{id}": {"get": {"summary": "A job's state, progress and result",
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "404": {"$ref": "#/components/responses/Error"}}}},
    "/api/jobs/{id}/image.png": {"get": {"summary": "A finished job's output image",
      "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
      "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}}}}
  },
  "components": {
    "responses": {"Error": {"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
      "JobRequest": {"type": "object", "required": ["task"], "properties": {
        "task": {"type": "string", "enum": ["ask", "reconstruct", "edit", "generate"]},
        "image": {"type": "string", "description": "base64 PNG or JPEG (a data: URL prefix is allowed); ask, reconstruct, edit"},
        "sample": {"type": "string", "description": "a sample scene instead of image, e.g. test-3"},
        "question": {"type": "string", "description": "ask"},
        "instruction": {"type": "string", "description": "edit"},
        "prompt": {"type": "string", "description": "generate"},
        "seed": {"type": "integer", "minimum": 0, "maximum": 9007199254740991, "default": 42},
        "steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20},
        "guidance": {"type": "number", "minimum": 0, "maximum": 20, "default": 4.5}}},
      "Job": {"type": "object", "required": ["id", "task", "state", "progress", "message", "url"], "properties": {
        "id": {"type": "string"}, "task": {"type": "string"}, "url": {"type": "string"},
        "state": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "message": {"type": "string"}, "ahead": {"type": "integer"}, "seconds": {"type": "number"},
        "error": {"type": "string"},
        "result": {"type": "object", "properties": {"answer": {"type": "string"}, "psnr": {"type": "number"},
                   "ssim": {"type": "number"}, "image_url": {"type": "string"},
                   "note": {"type": "string", "description": "what the job changed about its input, e.g. a resize"}}}}},
      "Sample": {"type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}, "caption": {"type": "string"},
                 "questions": {"type": "array", "items": {"type": "string"}}, "edits": {"type": "array", "items": {"type": "string"}}}},
      "Health": {"type": "object", "properties": {"status": {"type": "string"}, "models": {"type": "object", "additionalProperties": {"type": "string"}},
                 "running": {"type": "integer"}, "queued": {"type": "integer"}, "max_queue": {"type": "integer"},
                 "kept_jobs": {"type": "integer"}, "max_jobs": {"type": "integer"}, "completed": {"type": "integer"},
                 "failed": {"type": "integer"}, "refused": {"type": "integer"}}}
    }
  }
}
"""#
}
