import HTTPCore
import PinGlass
import JSON

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
          "Health": {"type": "object", "required": ["status"], "description": "checks only for loopback and HEALTH_DETAIL_NETWORKS", "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
            "checks": {"type": "object", "required": ["database"], "properties": {
              "database": {"type": "object"}, "migrations": {"type": "object"}, "tbank": {"type": "object"},
              "kie": {"type": "object"}, "telegram": {"type": "object"}, "storage": {"type": "object"}, "workers": {"type": "object"}}}}},
          "PaymentCreateRequest": {"type": "object", "required": ["tierId"], "properties": {
            "tierId": {"type": "string"}, "avatarId": {"type": "integer"},
            "email": {"type": "string", "nullable": true, "description": "the fiscal receipt's address, checked as PATCH /api/me checks it and remembered; without it the remembered one is used"}}},
          "PaymentCreated": {"type": "object", "required": ["paymentId", "orderId", "confirmationUrl", "amount", "testMode"], "properties": {
            "paymentId": {"type": "string"}, "orderId": {"type": "string"}, "confirmationUrl": {"type": "string"},
            "amount": {"type": "integer"}, "amountRub": {"type": "number"}, "testMode": {"type": "boolean"}}},
          "PaymentStatus": {"type": "object", "required": ["paid", "status", "consumed"], "properties": {
            "paid": {"type": "boolean"}, "status": {"type": "string"}, "consumed": {"type": "boolean"},
            "paymentId": {"type": "string", "nullable": true}, "orderId": {"type": "string"},
            "amount": {"type": "integer"}, "amountRub": {"type": "number"}, "usable": {"type": "boolean"}}},
          "Avatar": {"type": "object", "required": ["id", "name", "status", "referenceCount", "photoCount", "createdAt"], "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "status": {"type": "string", "enum": ["draft", "ready", "processing"]},
            "referenceCount": {"type": "integer"}, "photoCount": {"type": "integer"}, "createdAt": {"type": "string"}}},
          "AvatarEnvelope": {"type": "object", "required": ["avatar"], "properties": {"avatar": {"$ref": "#/components/schemas/Avatar"}}},
          "AvatarList": {"type": "object", "required": ["avatars"], "properties": {
            "avatars": {"type": "array", "items": {"$ref": "#/components/schemas/Avatar"}}}},
          "AvatarDetail": {"type": "object", "required": ["id", "name", "status", "referenceCount", "photoCount", "createdAt", "references", "photos", "latestJob"], "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "status": {"type": "string"},
            "referenceCount": {"type": "integer"}, "photoCount": {"type": "integer"}, "createdAt": {"type": "string"},
            "references": {"type": "array", "items": {"$ref": "#/components/schemas/Reference"}},
            "photos": {"type": "array", "description": "Released photos only (sent or on their way to the chat); a failed job's withheld photos are never listed",
              "items": {"type": "object", "required": ["id", "url"], "properties": {
              "id": {"type": "integer"}, "jobId": {"type": "integer"}, "url": {"type": "string"}}}},
            "latestJob": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Job"}]}}},
          "AvatarRename": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
          "Reference": {"type": "object", "required": ["id", "url", "createdAt"], "properties": {
            "id": {"type": "integer"}, "url": {"type": "string"}, "createdAt": {"type": "string"}}},
          "References": {"type": "object", "required": ["references"], "properties": {
            "references": {"type": "array", "items": {"$ref": "#/components/schemas/Reference"}}}},
          "ReferenceUpload": {"type": "object", "required": ["referenceImages"], "properties": {
            "referenceImages": {"type": "array", "items": {"type": "string", "description": "data:image/jpeg;base64,…"}}}},
          "Uploaded": {"type": "object", "required": ["uploaded", "rejected"], "properties": {
            "uploaded": {"type": "array", "items": {"type": "object", "required": ["id", "url", "duplicate"], "properties": {
              "id": {"type": "integer"}, "url": {"type": "string"},
              "duplicate": {"type": "boolean", "description": "the same image was stored already: its reference is returned, nothing is stored twice"}}}},
            "rejected": {"type": "array", "items": {"type": "object", "required": ["index", "reason", "code"], "properties": {
              "index": {"type": "integer"}, "reason": {"type": "string", "description": "for people"},
              "code": {"type": "string", "enum": ["UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE", "LIMIT_REACHED", "VALIDATION_ERROR"],
                       "description": "the error a single upload of this image would answer (VALIDATION_ERROR: not a data URL)"}}}}}},
          "GenerateRequest": {"type": "object", "required": ["avatarId"], "properties": {
            "avatarId": {"type": "integer"},
            "styleId": {"type": "string", "description": "a style id of GET /api/styles (default pinglass); the original client's professional, lifestyle and creative stand for business, pinglass and pinglass"},
            "paymentId": {"type": "string"},
            "useStoredReferences": {"type": "boolean", "description": "the original client's flag: the avatar's stored references are always used; false requires referenceImages"},
            "referenceImages": {"type": "array", "maxItems": 20, "items": {"type": "string", "description": "data:image/jpeg;base64,…"},
                                "description": "stored as the avatar's references first, with the checks of POST /api/avatars/{id}/references (magic bytes, 10 MB, 20 per avatar, the same image once); the whole request body is capped at 30 MB (base64 makes a 10 MB photo ~14 MB), larger gets 413"},
            "telegramUserId": {"type": "integer", "description": "the original client's field: must be the signed user's own id (403 otherwise); never an identity by itself"}}},
          "JobStarted": {"type": "object", "required": ["jobId", "status", "totalPhotos"], "properties": {
            "jobId": {"type": "integer"}, "avatarId": {"type": "integer"}, "status": {"type": "string", "enum": ["queued"]}, "totalPhotos": {"type": "integer"},
            "referenceImagesUsed": {"type": "integer", "description": "inline referenceImages stored (or already stored)"},
            "referenceImagesRejected": {"type": "integer"},
            "success": {"type": "boolean", "enum": [true]},
            "data": {"type": "object", "description": "the same fields again, where the original client reads them"}}},
          "JobRefund": {"type": "object", "required": ["amount", "amountRub", "status", "requestedAt", "refundedAt"], "properties": {
            "amount": {"type": "integer"}, "amountRub": {"type": "number"},
            "status": {"type": "string", "enum": ["pending", "requested", "succeeded", "failed"]},
            "requestedAt": {"type": "string", "description": "when the refund was decided"},
            "refundedAt": {"type": "string", "nullable": true, "description": "when the bank confirmed it; null until then"}}},
          "Job": {"type": "object", "required": ["jobId", "avatarId", "status", "progress", "photos", "photoCount", "refund", "keptUntil", "createdAt", "updatedAt"], "properties": {
            "jobId": {"type": "integer"}, "avatarId": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "processing", "completed", "partial", "failed", "canceled"]},
            "progress": {"type": "object", "required": ["completed", "failed", "total", "percentage"], "properties": {
              "completed": {"type": "integer"}, "failed": {"type": "integer"}, "total": {"type": "integer"}, "percentage": {"type": "integer"}}},
            "photoCount": {"type": "integer", "description": "how many photos are shown (released and still stored)"},
            "refund": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/JobRefund"}]},
            "keptUntil": {"type": "string", "nullable": true, "description": "when the job's photos are removed: MEDIA_RETENTION_DAYS after it ended; null while it runs"},
            "createdAt": {"type": "string"}, "updatedAt": {"type": "string"},
            "photos": {"type": "array", "description": "Released photos only: those in a delivery batch, sent or on their way to the chat (a batch goes out as soon as its photos are stored); a failed job's withheld photos are never listed, their price is refunded; removed photos (deleted by the customer, or past MEDIA_RETENTION_DAYS) are not listed",
              "items": {"type": "object", "required": ["id", "url"], "properties": {
              "id": {"type": "integer"}, "url": {"type": "string"}}}}}},
          "JobSummary": {"type": "object", "description": "a Job without its photos", "required": ["jobId", "avatarId", "status", "progress", "photoCount", "refund", "keptUntil", "createdAt", "updatedAt"], "properties": {
            "jobId": {"type": "integer"}, "avatarId": {"type": "integer"},
            "status": {"type": "string", "enum": ["queued", "processing", "completed", "partial", "failed", "canceled"]},
            "progress": {"type": "object", "required": ["completed", "failed", "total", "percentage"], "properties": {
              "completed": {"type": "integer"}, "failed": {"type": "integer"}, "total": {"type": "integer"}, "percentage": {"type": "integer"}}},
            "photoCount": {"type": "integer", "description": "how many photos are shown (released and still stored)"},
            "refund": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/JobRefund"}]},
            "keptUntil": {"type": "string", "nullable": true, "description": "when the job's photos are removed: MEDIA_RETENTION_DAYS after it ended; null while it runs"},
            "createdAt": {"type": "string"}, "updatedAt": {"type": "string"}}},
          "JobList": {"type": "object", "required": ["jobs"], "properties": {
            "jobs": {"type": "array", "description": "the caller's jobs, newest first, at most 50", "items": {"$ref": "#/components/schemas/JobSummary"}}}},
          "Me": {"type": "object", "required": ["user", "retentionDays"], "properties": {
            "user": {"type": "object", "required": ["telegramId", "firstName", "languageCode", "email", "consentAt"], "properties": {
              "telegramId": {"type": "integer"}, "firstName": {"type": "string", "nullable": true},
              "languageCode": {"type": "string", "nullable": true},
              "email": {"type": "string", "nullable": true, "description": "where fiscal receipts go"},
              "consentAt": {"type": "string", "nullable": true, "description": "when the customer agreed to the processing of their photos"}}},
            "retentionDays": {"type": "integer", "description": "MEDIA_RETENTION_DAYS: selfies are removed this many days after upload, photos after their job ended"}}},
          "MeUpdate": {"type": "object", "properties": {
            "email": {"type": "string", "nullable": true, "description": "at most 64 characters (the fiscal receipt's limit), one @, a dot in the domain, no spaces; null forgets it"},
            "consent": {"type": "boolean", "enum": [true], "description": "records the time of consent once"}}},
          "DataDeleted": {"type": "object", "required": ["deleted"], "properties": {
            "deleted": {"type": "object", "required": ["avatars", "references", "photos"], "properties": {
              "avatars": {"type": "integer"}, "references": {"type": "integer"}, "photos": {"type": "integer"}}}}}
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
        "/metrics": {"get": {"summary": "Prometheus metrics for the operator (nginx allows configured networks only)",
          "description": "Prometheus text exposition format 0.0.4. Requests by route template and status (counted in memory shared by the workers of this pool; reset when the pool restarts), queue depth and oldest age per state, jobs and payments by status, Kie 429s, storage upload failures, Telegram failures, refunds sent and failed, every event counter, cron duty last runs per host, and pinglass_database_up. Answers 200 also while the database is down.",
          "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                        "403": {"description": "refused by nginx: not from an allowed network"}}}},
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
            "400": {"description": "payment_id is not a T-Bank payment id", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "not the caller's payment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/payment/webhook": {"post": {"summary": "T-Bank notification (Token-signed)",
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object"}}}},
          "responses": {
            "200": {"description": "accepted: body exactly OK", "content": {"text/plain": {"schema": {"type": "string", "enum": ["OK"]}}}},
            "400": {"description": "unparsable"}, "403": {"description": "bad Token or unknown terminal"},
            "503": {"description": "database down: the bank re-sends"}}}},
        "/api/kie/callback": {"post": {"summary": "Kie task callback: a hint that makes the task due for polling now (recordInfo stays authoritative)",
          "parameters": [{"name": "X-Webhook-Timestamp", "in": "header", "required": true, "schema": {"type": "string"}, "description": "unix seconds"},
                         {"name": "X-Webhook-Signature", "in": "header", "required": true, "schema": {"type": "string"}, "description": "base64(HMAC-SHA256(taskId + '.' + timestamp)) with KIE_WEBHOOK_HMAC_KEY"}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {
            "code": {"type": "integer"}, "msg": {"type": "string"},
            "data": {"type": "object", "required": ["taskId"], "properties": {"taskId": {"type": "string"}, "state": {"type": "string"}}}}}}}},
          "responses": {
            "200": {"description": "received (also for an unknown task id)", "content": {"application/json": {"schema": {"type": "object", "required": ["received"], "properties": {"received": {"type": "boolean"}}}}}},
            "400": {"description": "no taskId", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "missing, wrong or stale signature", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "KIE_WEBHOOK_HMAC_KEY is not set: the endpoint does not exist", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "415": {"description": "not JSON", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "503": {"description": "database down", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/telegram/webhook": {"post": {"summary": "Telegram bot updates: /start in a private chat is answered with the Bot API method (sendMessage with a button to the Mini App) in the answer itself; other updates get {}",
          "parameters": [{"name": "X-Telegram-Bot-Api-Secret-Token", "in": "header", "required": true, "schema": {"type": "string"}, "description": "the secret_token given to setWebhook: TELEGRAM_WEBHOOK_SECRET"}],
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "description": "a Telegram Update", "properties": {"update_id": {"type": "integer"}, "message": {"type": "object"}}}}}},
          "responses": {
            "200": {"description": "the Bot API method to run, or {} when the update needs no answer", "content": {"application/json": {"schema": {"type": "object", "properties": {
              "method": {"type": "string", "enum": ["sendMessage"]}, "chat_id": {"type": "integer"}, "text": {"type": "string"},
              "reply_markup": {"type": "object", "properties": {"inline_keyboard": {"type": "array", "items": {"type": "array", "items": {"type": "object", "required": ["text"], "properties": {
                "text": {"type": "string"}, "url": {"type": "string"}, "web_app": {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}}}}}}}}}}}},
            "400": {"description": "the body is not a JSON object", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "401": {"description": "missing or wrong secret token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "TELEGRAM_WEBHOOK_SECRET is not set: the endpoint does not exist", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "503": {"description": "database down (Telegram sends the update again)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/avatars": {
          "post": {"summary": "Create an avatar (at most 3)", "security": [{"tma": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarRename"}}}},
            "responses": {"201": {"description": "the avatar", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarEnvelope"}}}}, "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "429": {"description": "limit reached", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "get": {"summary": "The caller's avatars", "security": [{"tma": []}], "responses": {"200": {"description": "avatars", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarList"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/avatars/{id}": {
          "get": {"summary": "An avatar with its references, photos and latest job", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "the avatar", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarDetail"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "patch": {"summary": "Rename an avatar", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarRename"}}}},
            "responses": {"200": {"description": "the avatar", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AvatarEnvelope"}}}}, "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "delete": {"summary": "Delete an avatar and its stored photos", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "responses": {"204": {"description": "deleted"}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "a generation is running, or one of its photos is being sent this moment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/avatars/{id}/references": {
          "post": {"summary": "Upload reference photos (raw image bytes, or JSON data URLs)", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "requestBody": {"required": true, "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}},
              "image/png": {"schema": {"type": "string", "format": "binary"}}, "image/webp": {"schema": {"type": "string", "format": "binary"}},
              "application/json": {"schema": {"$ref": "#/components/schemas/ReferenceUpload"}}}},
            "responses": {"201": {"description": "stored and refused images", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Uploaded"}}}}, "400": {"description": "no image could be stored, or invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Uploaded"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "a generation is running", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "413": {"description": "image too large", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "415": {"description": "not a JPEG, PNG or WebP image", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "get": {"summary": "An avatar's reference photos", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "responses": {"200": {"description": "references", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/References"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/avatars/{id}/references/{refId}": {
          "delete": {"summary": "Delete a reference photo", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}, {"name": "refId", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "responses": {"204": {"description": "deleted"}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "a generation is running", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/generate": {
          "post": {"summary": "Start a generation with a paid, unused payment", "security": [{"tma": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}}},
            "responses": {"202": {"description": "queued", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobStarted"}}}}, "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "402": {"description": "no usable payment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "403": {"description": "telegramUserId is not the signed user", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "referenceImages sent while a generation of the avatar runs", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "429": {"description": "limit reached", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "get": {"summary": "A job's progress", "security": [{"tma": []}],
            "parameters": [{"name": "job_id", "in": "query", "required": true, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "progress", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "400": {"description": "invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/jobs": {
          "get": {"summary": "The caller's jobs, newest first (at most 50), without photos", "security": [{"tma": []}], "responses": {"200": {"description": "jobs", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobList"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/me": {
          "get": {"summary": "The caller's account", "security": [{"tma": []}], "responses": {"200": {"description": "the account", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}},
          "patch": {"summary": "Set or forget the receipt e-mail, give consent", "security": [{"tma": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MeUpdate"}}}},
            "responses": {"200": {"description": "the account", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}}}, "400": {"description": "invalid e-mail or consent", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/me/data": {
          "delete": {"summary": "Delete the caller's avatars, selfies and generated photos (stored objects included), the receipt e-mail and the consent; payments, refunds and jobs stay", "security": [{"tma": []}],
            "responses": {"200": {"description": "what was deleted", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DataDeleted"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "409": {"description": "a generation of the caller is running, or one of its photos is being sent this moment", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/api/jobs/{id}": {
          "get": {"summary": "A job's progress", "security": [{"tma": []}], "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}], "responses": {"200": {"description": "progress", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}}, "401": {"description": "no or invalid init data", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}, "404": {"description": "not the caller's", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}}},
        "/payment/success": {"get": {"summary": "Where the bank returns the customer after paying", "responses": {"200": {"description": "HTML page in Russian or English by Accept-Language (Content-Language says which)"}}}},
        "/payment/fail": {"get": {"summary": "Where the bank returns the customer when paying failed", "responses": {"200": {"description": "HTML page in Russian or English by Accept-Language (Content-Language says which)"}}}},
        "/admin/login": {
          "get": {"summary": "The operator's login form (HTML; sets the login CSRF cookie)", "responses": {"200": {"description": "HTML page"}, "303": {"description": "already logged in: to /admin"}}},
          "post": {"summary": "Log in (form fields username, password, csrf)", "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "csrf": {"type": "string"}}}}}},
            "responses": {"303": {"description": "logged in: session cookie set, to /admin"}, "401": {"description": "wrong name or password (HTML)"}, "403": {"description": "CSRF token missing or wrong (HTML)"}, "429": {"description": "locked out (HTML)"}}}},
        "/admin/admin.css": {"get": {"summary": "The admin pages' style sheet", "responses": {"200": {"description": "CSS"}}}},
        "/admin/logout": {"post": {"summary": "End this session (form field csrf)", "responses": {"303": {"description": "to /admin/login"}, "403": {"description": "CSRF token missing or wrong"}}}},
        "/admin/logout-everywhere": {"post": {"summary": "End every session of this account (form field csrf)", "responses": {"303": {"description": "to /admin/login"}, "403": {"description": "CSRF token missing or wrong"}}}},
        "/admin": {"get": {"summary": "The operator's dashboard (HTML)", "responses": {"200": {"description": "HTML page"}, "303": {"description": "no session: to /admin/login"}}}},
        "/admin/audit": {"get": {"summary": "The audit trail, newest first (HTML)", "responses": {"200": {"description": "HTML page"}, "303": {"description": "no session: to /admin/login"}}}}
      }
    }
    """#
}
