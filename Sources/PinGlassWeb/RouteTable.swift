import HTTPCore
import PinGlass

/// Every endpoint of the HTTP API in one screen (contract: docs/http-api.md), by group:
/// public reads, the providers' notifications (each verifies its own signature), Telegram's
/// bot webhook (its secret token), and the
/// Mini App's routes behind `TelegramAuthentication`, and the operator's pages behind
/// `AdminGuard` (docs/admin.md): every `/admin` route but the login form and its style sheet
/// is added inside one of its groups, so none can miss the session, CSRF and role checks.
enum RouteTable {
    static func router() -> Router {
        var r = Router()
        // Public: no caller identity.
        r.add("GET", "/api/health", HealthRoutes.health)
        r.add("GET", "/api/pricing", CatalogueRoutes.pricing)
        r.add("GET", "/api/styles", CatalogueRoutes.styles)
        r.add("GET", "/api/openapi.json", OpenAPIDocument.serve)
        r.add("GET", "/metrics", MetricsRoutes.metrics)
        // Providers: T-Bank's Token, Kie's HMAC signature.
        r.add("POST", "/api/payment/webhook", PaymentsRoutes.webhook)
        r.add("POST", "/api/kie/callback", KieCallbackRoutes.callback)
        // Telegram: the webhook's secret token (its own group: no Mini App init data).
        r.group([]) { r in
            r.add("POST", "/api/telegram/webhook", TelegramRoutes.webhook)
        }
        // The Mini App: Telegram init data.
        r.group([TelegramAuthentication()]) { r in
            r.add("POST", "/api/payment/create", PaymentsRoutes.create)
            r.add("GET", "/api/payment/status", PaymentsRoutes.status)
            r.add("POST", "/api/avatars", AvatarsRoutes.create)
            r.add("GET", "/api/avatars", AvatarsRoutes.list)
            r.add("GET", "/api/avatars/:id", AvatarsRoutes.show)
            r.add("PATCH", "/api/avatars/:id", AvatarsRoutes.rename)
            r.add("DELETE", "/api/avatars/:id", AvatarsRoutes.delete)
            r.add("POST", "/api/avatars/:id/references", AvatarsRoutes.addReferences)
            r.add("GET", "/api/avatars/:id/references", AvatarsRoutes.listReferences)
            r.add("DELETE", "/api/avatars/:id/references/:refId", AvatarsRoutes.deleteReference)
            r.add("POST", "/api/generate", GenerationRoutes.start)
            r.add("GET", "/api/generate", GenerationRoutes.progressByQuery)
            r.add("GET", "/api/jobs", GenerationRoutes.list)
            r.add("GET", "/api/jobs/:id", GenerationRoutes.progressByPath)
            r.add("GET", "/api/me", AccountRoutes.show)
            r.add("PATCH", "/api/me", AccountRoutes.update)
            r.add("DELETE", "/api/me/data", AccountRoutes.deleteData)
        }
        // The operator's pages: the login form (its own CSRF cookie) and the style sheet are
        // open; everything else needs a session. Only admins send state-changing requests,
        // except logging out, which every role may.
        r.add("GET", "/admin/login", AdminRoutes.loginForm)
        r.add("POST", "/admin/login", AdminRoutes.login)
        r.add("GET", "/admin/admin.css", AdminPages.css)
        r.group([AdminGuard(writers: .anyRole)]) { r in
            r.add("POST", "/admin/logout", AdminRoutes.logout)
            r.add("POST", "/admin/logout-everywhere", AdminRoutes.logoutEverywhere)
        }
        r.group([AdminGuard(writers: .admins)]) { r in
            r.add("GET", "/admin", AdminRoutes.dashboard)
            r.add("GET", "/admin/audit", AdminRoutes.audit)
        }
        // The bank's return pages (the browser, after paying).
        r.add("GET", "/payment/success", ReturnPageRoutes.success)
        r.add("GET", "/payment/fail", ReturnPageRoutes.fail)
        return r
    }
}
