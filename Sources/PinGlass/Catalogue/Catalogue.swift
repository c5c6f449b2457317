import Postgres
import JSON

/// An amount of money in kopecks. Never a floating-point number.
public struct Money: Equatable, Comparable, Sendable, CustomStringConvertible {
    public let kopecks: Int
    public init(kopecks: Int) { self.kopecks = kopecks }
    public static func < (a: Money, b: Money) -> Bool { a.kopecks < b.kopecks }
    /// Roubles for display (`amountRub`): exact for whole roubles, two decimals otherwise.
    public var roublesJSON: JSON {
        kopecks % 100 == 0 ? .int(kopecks / 100)
            : .number("\(kopecks / 100).\(kopecks % 100 < 10 ? "0" : "")\(kopecks % 100)")
    }
    public var description: String { "\(kopecks / 100).\(kopecks % 100 < 10 ? "0" : "")\(kopecks % 100) RUB" }
}

/// A price tier: how many photos for how much.
public struct Tier: Equatable, Sendable {
    public let id: String
    public let photos: Int
    public let amount: Money
    public let title: String
    public let active: Bool
}

public struct Style: Equatable, Sendable {
    public let id: String
    public let name: String
    public let description: String
    public let prompts: Int
}

/// The catalogue (tiers, styles, prompts), read from PostgreSQL where admins change it.
public enum Catalogue {
    public static func tiers(_ db: Connection, includeInactive: Bool = false) throws -> [Tier] {
        try db.query("""
            SELECT id, photos, amount_kopecks, title, active FROM tiers
            WHERE active OR $1 ORDER BY sort_order, id
            """, [includeInactive], retry: .idempotent).map(tier)
    }

    public static func tier(_ db: Connection, id: String) throws -> Tier? {
        try db.query("SELECT id, photos, amount_kopecks, title, active FROM tiers WHERE id = $1", [id], retry: .idempotent).first.map(tier)
    }

    private static func tier(_ r: Row) -> Tier {
        Tier(id: r.requiredString("id"), photos: r.requiredInt("photos"),
             amount: Money(kopecks: r.requiredInt("amount_kopecks")), title: r.requiredString("title"),
             active: r.bool("active") ?? false)
    }

    /// The original PinGlass client's style ids and the style of ours that stands for each.
    /// A style of ours with the same id wins (an admin may add one); the alias only names
    /// an id we do not have.
    public static let originalStyleIDs = ["professional": "business", "lifestyle": "pinglass", "creative": "pinglass"]

    /// Our style for a client's style id: its alias when it is one of the original's, else itself.
    public static func aliasedStyleID(_ id: String) -> String { originalStyleIDs[id] ?? id }

    public static func styles(_ db: Connection) throws -> [Style] {
        try db.query("""
            SELECT s.id, s.name, s.description, count(p.id)::int AS prompts
            FROM styles s LEFT JOIN prompts p ON p.style_id = s.id
            WHERE s.active GROUP BY s.id ORDER BY s.sort_order, s.id
            """, retry: .idempotent).map { r in
            Style(id: r.requiredString("id"), name: r.requiredString("name"),
                  description: r.requiredString("description"), prompts: r.requiredInt("prompts"))
        }
    }
}
