import JSON
import LibCrypto
import WebURL

/// A Telegram user as the validated Mini App init data describes them.
public struct TelegramUser: Equatable, Sendable {
    public let id: Int64
    public let username: String?
    public let firstName: String?
    public let lastName: String?
    public let languageCode: String?

    public init(id: Int64, username: String?, firstName: String?, lastName: String?, languageCode: String?) {
        self.id = id
        self.username = username
        self.firstName = firstName
        self.lastName = lastName
        self.languageCode = languageCode
    }
}

/// Validates Telegram Mini App init data (docs/providers.md#telegram-init-data):
/// data-check string of every field but `hash` (so `signature` stays in), sorted by key,
/// `key=value` joined by newlines; secret = HMAC-SHA256(key "WebAppData", bot token);
/// hash = hex HMAC-SHA256(secret, data-check string), compared in constant time;
/// `auth_date` no older than `maxAge` and not in the future.
///
/// ```swift
/// let user = try TelegramInitData.validate(raw, botToken: token, now: now, maxAge: 86400)
/// ```
public enum TelegramInitData {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case badHash
        case expired
        case fromTheFuture

        public var description: String {
            switch self {
            case .malformed(let why): return "init data is malformed: \(why)"
            case .badHash: return "init data signature is invalid"
            case .expired: return "init data has expired; reopen the Mini App"
            case .fromTheFuture: return "init data auth_date is in the future"
            }
        }
    }

    /// Allowed clock difference for an `auth_date` ahead of ours.
    static let futureSkew = 60.0

    public static func validate(_ raw: String, botToken: String, now: Double, maxAge: Int) throws -> TelegramUser {
        guard !raw.isEmpty, raw.utf8.count <= 8192 else { throw Failure.malformed("empty or too long") }
        var fields: [(String, String)] = []
        var seen = Set<String>()
        for pair in raw.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, let key = percentDecode(String(kv[0])), let value = percentDecode(String(kv[1])), !key.isEmpty else {
                throw Failure.malformed("bad field")
            }
            guard seen.insert(key).inserted else { throw Failure.malformed("duplicate field \(key)") }
            fields.append((key, value))
        }
        guard let hash = fields.first(where: { $0.0 == "hash" })?.1 else { throw Failure.malformed("no hash") }
        let check = fields.filter { $0.0 != "hash" }
            .sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
        let secret = Crypto.hmacSHA256(key: Array("WebAppData".utf8), message: Array(botToken.utf8))
        let expected = Crypto.hex(Crypto.hmacSHA256(key: secret, message: Array(check.utf8)))
        guard Crypto.constantTimeEqual(Array(hash.lowercased().utf8), Array(expected.utf8)) else { throw Failure.badHash }

        guard let authText = fields.first(where: { $0.0 == "auth_date" })?.1, let authDate = Double(authText) else {
            throw Failure.malformed("no auth_date")
        }
        if authDate > now + futureSkew { throw Failure.fromTheFuture }
        if now - authDate > Double(maxAge) { throw Failure.expired }

        guard let userText = fields.first(where: { $0.0 == "user" })?.1,
              let user = try? JSON.parse(Array(userText.utf8)),
              let id = user["id"].flatMap({ $0.scalarText }).flatMap({ Int64($0) }), id > 0 else {
            throw Failure.malformed("no valid user")
        }
        return TelegramUser(id: id, username: user["username"]?.stringValue, firstName: user["first_name"]?.stringValue,
                            lastName: user["last_name"]?.stringValue, languageCode: user["language_code"]?.stringValue)
    }

    /// Signs init data the way Telegram does (the simulator and the tests use it).
    public static func sign(fields: [(String, String)], botToken: String) -> String {
        let check = fields.sorted { Array($0.0.utf8).lexicographicallyPrecedes(Array($1.0.utf8)) }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "\n")
        let secret = Crypto.hmacSHA256(key: Array("WebAppData".utf8), message: Array(botToken.utf8))
        let hash = Crypto.hex(Crypto.hmacSHA256(key: secret, message: Array(check.utf8)))
        return (fields + [("hash", hash)]).map { "\($0.0)=\(percentEncode($0.1))" }.joined(separator: "&")
    }
}
