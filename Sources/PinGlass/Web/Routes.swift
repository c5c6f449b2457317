import HTTPCore

/// Every endpoint of the HTTP API in one screen (contract: shared/design/http-api.md).
enum Routes {
    static func table() -> Router {
        var r = Router()
        r.add("GET", "/api/health", HealthAPI.health)
        r.add("GET", "/api/pricing", CatalogueAPI.pricing)
        r.add("GET", "/api/styles", CatalogueAPI.styles)
        r.add("GET", "/api/openapi.json", OpenAPIDocument.serve)
        r.add("POST", "/api/payment/create", PaymentsAPI.create)
        r.add("GET", "/api/payment/status", PaymentsAPI.status)
        r.add("POST", "/api/payment/webhook", PaymentsAPI.webhook)
        r.add("GET", "/payment/success", ReturnPages.success)
        r.add("GET", "/payment/fail", ReturnPages.fail)
        return r
    }
}
