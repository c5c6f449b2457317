import HTTPCore

/// `GET /api/openapi.json`: the HTTP API as an OpenAPI 3.0 document. The tests check that
/// every route is documented and that real answers match these schemas.
enum OpenAPIDocument {
    static func serve(_ ctx: Context) throws -> Response { .jsonBytes(Array(text.utf8)) }

    static let text = #"""
    {
      "openapi": "3.0.3",
      "info": {"title": "PinGlass API", "version": "1.0.0",
               "description": "Payments and generation of AI portrait sets. User endpoints authenticate with Telegram Mini App init data: 'Authorization: tma <initData>'."},
      "components": {
        "securitySchemes": {"tma": {"type": "apiKey", "in": "header", "name": "Authorization",
                                    "description": "tma <raw Telegram Mini App init data>"}},
        "schemas": {
          "Error": {"type": "object", "required": ["success", "error"], "properties": {
            "success": {"type": "boolean", "enum": [false]},
            "error": {"type": "object", "required": ["code", "message"], "properties": {
              "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}},
          "Pricing": {"type": "object", "required": ["tiers"], "properties": {
            "tiers": {"type": "array", "items": {"type": "object", "required": ["id", "photos", "amount", "amountRub"], "properties": {
              "id": {"type": "string"}, "photos": {"type": "integer"}, "amount": {"type": "integer"},
              "amountRub": {"type": "number"}, "title": {"type": "string"}}}}}},
          "Styles": {"type": "object", "required": ["styles"], "properties": {
            "styles": {"type": "array", "items": {"type": "object", "required": ["id", "name", "description", "prompts"], "properties": {
              "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}, "prompts": {"type": "integer"}}}}}},
          "Health": {"type": "object", "required": ["status", "checks"], "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "checks": {"type": "object", "required": ["database"], "properties": {
              "database": {"type": "object"}, "migrations": {"type": "object"}, "tbank": {"type": "object"},
              "kie": {"type": "object"}, "telegram": {"type": "object"}, "storage": {"type": "object"}, "workers": {"type": "object"}}}}},
          "PaymentCreateRequest": {"type": "object", "required": ["tierId"], "properties": {
            "tierId": {"type": "string"}, "avatarId": {"type": "integer"}, "email": {"type": "string"}}},
          "PaymentCreated": {"type": "object", "required": ["paymentId", "orderId", "confirmationUrl", "amount", "testMode"], "properties": {
            "paymentId": {"type": "string"}, "orderId": {"type": "string"}, "confirmationUrl": {"type": "string"},
            "amount": {"type": "integer"}, "amountRub": {"type": "number"}, "testMode": {"type": "boolean"}}},
          "PaymentStatus": {"type": "object", "required": ["paid", "status", "consumed"], "properties": {
            "paid": {"type": "boolean"}, "status": {"type": "string"}, "consumed": {"type": "boolean"},
            "paymentId": {"type": "string", "nullable": true}, "orderId": {"type": "string"},
            "amount": {"type": "integer"}, "amountRub": {"type": "number"}}}
        }
      },
      "paths": {
        "/api/health": {"get": {"summary": "State of the service", "responses": {
          "200": {"description": "ok or degraded", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
          "503": {"description": "database unreachable", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}}}}},
        "/api/pricing": {"get": {"summary": "Price tiers", "responses": {
          "200": {"description": "tiers", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pricing"}}}}}}},
        "/api/styles": {"get": {"summary": "Styles", "responses": {
          "200": {"description": "styles", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Styles"}}}}}}},
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3 document"}}}},
        "/api/payment/create": {"post": {"summary": "Create a T-Bank payment", "security": [{"tma": []}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaymentCreateRequest"}}}},
          "responses": {
            "200": {"description": "payment link", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaymentCreated"}}}},
            "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "avatar not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "429": {"description": "too many payments", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "502": {"description": "the bank refused or did not answer", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "503": {"description": "payments not configured or database down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/payment/status": {"get": {"summary": "The caller's payment", "security": [{"tma": []}],
          "parameters": [{"name": "payment_id", "in": "query", "required": false, "schema": {"type": "string"}}],
          "responses": {
            "200": {"description": "state", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaymentStatus"}}}},
            "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "not the caller's payment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/payment/webhook": {"post": {"summary": "T-Bank notification (Token-signed)",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
          "responses": {
            "200": {"description": "accepted: body exactly OK", "content": {"text/plain": {"schema": {"type": "string", "enum": ["OK"]}}}},
            "400": {"description": "unparsable"}, "403": {"description": "bad Token or unknown terminal"},
            "503": {"description": "database down: the bank re-sends"}}}},
        "/payment/success": {"get": {"summary": "Where the bank returns the customer after paying", "responses": {"200": {"description": "HTML page"}}}},
        "/payment/fail": {"get": {"summary": "Where the bank returns the customer when paying failed", "responses": {"200": {"description": "HTML page"}}}}
      }
    }
    """#
}
