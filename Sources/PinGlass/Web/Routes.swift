import HTTPCore

/// Every endpoint of the HTTP API in one screen (docs/http-api.md).
enum Routes {
    static func table() -> Router {
        var r = Router()
        r.add("GET", "/api/health", HealthAPI.health)
        r.add("GET", "/api/pricing", CatalogueAPI.pricing)
        r.add("GET", "/api/styles", CatalogueAPI.styles)
        r.add("GET", "/api/openapi.json", OpenAPIDocument.serve)
        r.add("GET", "/metrics", MetricsAPI.metrics)
        r.add("POST", "/api/payment/create", PaymentsAPI.create)
        r.add("GET", "/api/payment/status", PaymentsAPI.status)
        r.add("POST", "/api/payment/webhook", PaymentsAPI.webhook)
        r.add("POST", "/api/kie/callback", KieCallbackAPI.callback)
        r.add("POST", "/api/avatars", AvatarsAPI.create)
        r.add("GET", "/api/avatars", AvatarsAPI.list)
        r.add("GET", "/api/avatars/:id", AvatarsAPI.show)
        r.add("PATCH", "/api/avatars/:id", AvatarsAPI.rename)
        r.add("DELETE", "/api/avatars/:id", AvatarsAPI.delete)
        r.add("POST", "/api/avatars/:id/references", AvatarsAPI.addReferences)
        r.add("GET", "/api/avatars/:id/references", AvatarsAPI.listReferences)
        r.add("DELETE", "/api/avatars/:id/references/:refId", AvatarsAPI.deleteReference)
        r.add("POST", "/api/generate", GenerationAPI.start)
        r.add("GET", "/api/generate", GenerationAPI.progressByQuery)
        r.add("GET", "/api/jobs/:id", GenerationAPI.progressByPath)
        r.add("GET", "/payment/success", ReturnPages.success)
        r.add("GET", "/payment/fail", ReturnPages.fail)
        return r
    }
}
