import HTTPCore
import PinGlass
import JSON

/// `GET /api/pricing` and `GET /api/styles`: cached per worker for a few seconds, so the
/// hot path needs no database round trip.
enum CatalogueRoutes {
    static let cacheSeconds = 10.0

    static func pricing(_ ctx: Context) throws -> Response {
        let body = try ctx.deps.cache.value("pricing", ttl: cacheSeconds) {
            let tiers = try Catalogue.tiers(ctx.db())
            return JSON.object([("tiers", .array(tiers.map { t in
                .object([("id", .string(t.id)), ("photos", .int(t.photos)), ("amount", .int(t.amount.kopecks)),
                         ("amountRub", t.amount.roublesJSON), ("title", .string(t.title))])
            }))]).bytes
        }
        return .jsonBytes(body)
    }

    static func styles(_ ctx: Context) throws -> Response {
        let body = try ctx.deps.cache.value("styles", ttl: cacheSeconds) {
            let styles = try Catalogue.styles(ctx.db())
            return JSON.object([("styles", .array(styles.map { s in
                .object([("id", .string(s.id)), ("name", .string(s.name)), ("description", .string(s.description)),
                         ("prompts", .int(s.prompts))])
            }))]).bytes
        }
        return .jsonBytes(body)
    }
}
